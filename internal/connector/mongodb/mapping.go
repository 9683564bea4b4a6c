package mongodb

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/normalize"
)

var (
	// fieldPattern is the CRD's pattern for a field path: dotted identifiers, so that a path can
	// never be an operator ($where) or reach into a positional or array-filter update ($[]).
	fieldPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`)
	// databasePattern and collectionPattern follow the CRD's pattern for <database>.<collection>.
	databasePattern   = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	collectionPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)
	hashedPattern     = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// collectionName is a mapped collection: the database is everything before the first dot, the
// collection (which may hold dots itself) everything after it.
type collectionName struct {
	database, collection string
}

func (n collectionName) String() string { return n.database + "." + n.collection }

func parseCollectionName(name string) (collectionName, error) {
	db, coll, ok := strings.Cut(name, ".")
	if !ok || !databasePattern.MatchString(db) || !collectionPattern.MatchString(coll) {
		return collectionName{}, fmt.Errorf("collection name %q is not <database>.<collection>", name)
	}
	if strings.HasPrefix(coll, "system.") {
		return collectionName{}, fmt.Errorf("collection %q is a system collection", name)
	}
	return collectionName{database: db, collection: coll}, nil
}

func validateField(field string) error {
	if len(field) > 255 || !fieldPattern.MatchString(field) {
		return fmt.Errorf("field %q is not a dotted path of identifiers", field)
	}
	return nil
}

// isIDPath reports whether field is _id or inside it: MongoDB never changes a document's _id.
func isIDPath(field string) bool {
	return field == "_id" || strings.HasPrefix(field, "_id.")
}

type matchField struct {
	field      string
	identifier string
	kind       normalize.Kind
}

// mapping is one entry of spec.collections, resolved.
type mapping struct {
	index    int
	spec     privacyv1alpha1.CollectionMapping
	name     collectionName
	match    []matchField
	provides []privacyv1alpha1.FieldProvide
	mask     []privacyv1alpha1.FieldMask
}

func (m *mapping) location() string { return m.name.String() }

func (m *mapping) action() privacyv1alpha1.TableAction { return m.spec.Action }

func newMappings(spec *privacyv1alpha1.DataStoreSpec) ([]*mapping, error) {
	out := make([]*mapping, 0, len(spec.Collections))
	for i, c := range spec.Collections {
		name, err := parseCollectionName(c.Name)
		if err != nil {
			return nil, err
		}
		m := &mapping{index: i, spec: c, name: name, provides: c.Provides, mask: c.Mask}
		for _, f := range c.Match {
			m.match = append(m.match, matchField{field: f.Field, identifier: f.Identifier, kind: normalize.KindFor(f.Identifier, string(f.As))})
		}
		out = append(out, m)
	}
	return out, nil
}

// rank orders the actions when several mappings match one document: the highest wins.
func rank(a privacyv1alpha1.TableAction) int {
	switch a {
	case privacyv1alpha1.ActionRetain:
		return 3
	case privacyv1alpha1.ActionDelete:
		return 2
	default:
		return 1
	}
}

// valuesAt returns the values at a dotted path the way MongoDB's queries see them: an array on
// the way is searched element by element, and an array at the end yields its elements.
func valuesAt(v any, parts []string) []any {
	if len(parts) == 0 {
		if arr, ok := v.(bson.A); ok {
			return []any(arr)
		}
		return []any{v}
	}
	switch x := v.(type) {
	case bson.D:
		for _, e := range x {
			if e.Key == parts[0] {
				return valuesAt(e.Value, parts[1:])
			}
		}
	case bson.M:
		if inner, ok := x[parts[0]]; ok {
			return valuesAt(inner, parts[1:])
		}
	case bson.A:
		var out []any
		for _, el := range x {
			switch el.(type) {
			case bson.D, bson.M:
				out = append(out, valuesAt(el, parts)...)
			}
		}
		return out
	}
	return nil
}

func fieldValues(doc bson.D, field string) []any {
	return valuesAt(doc, strings.Split(field, "."))
}

// identifierText is a stored value as the text an identifier holds: strings as they are,
// integers (and integral doubles) in decimal, ObjectIDs in hex. Other types identify nothing.
func identifierText(v any) (string, bool) {
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case int32:
		s = strconv.FormatInt(int64(x), 10)
	case int64:
		s = strconv.FormatInt(x, 10)
	case float64:
		if math.Trunc(x) == x && math.Abs(x) < 1<<53 {
			s = strconv.FormatInt(int64(x), 10)
		} else {
			s = strconv.FormatFloat(x, 'g', -1, 64)
		}
	case bson.ObjectID:
		s = x.Hex()
	}
	return s, s != ""
}

// bsonValues are the BSON values an exact match on v compares with: the string itself, the
// integer it spells (MongoDB compares numbers across int32, int64 and double), and the ObjectID
// it spells. They are always values of the query, never operators or query text.
func bsonValues(v string) []any {
	out := []any{v}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && strconv.FormatInt(n, 10) == v {
		out = append(out, n)
	}
	if len(v) == 24 {
		if id, err := bson.ObjectIDFromHex(v); err == nil && id.Hex() == v {
			out = append(out, id)
		}
	}
	return out
}

// hashText is what the hash strategy writes: hex(SHA-256(salt || value)), as the SQL stores do.
func hashText(salt []byte, value string) string {
	h := sha256.New()
	h.Write(salt)
	h.Write([]byte(value))
	return hex.EncodeToString(h.Sum(nil))
}

// masked reports whether a value is in the masked state of its strategy: null (or absent) for
// every strategy, the marker for redact, 64 lower-case hex digits for hash.
func masked(strategy privacyv1alpha1.MaskStrategy, v any) bool {
	if v == nil {
		return true
	}
	s, ok := v.(string)
	switch strategy {
	case privacyv1alpha1.MaskRedact:
		return ok && s == privacyv1alpha1.RedactedMarker
	case privacyv1alpha1.MaskHash:
		return ok && hashedPattern.MatchString(s)
	default:
		return false
	}
}
