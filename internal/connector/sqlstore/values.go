package sqlstore

import (
	"database/sql/driver"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// JSONValue turns a value scanned from a driver into one that encodes to JSON faithfully:
// bytes become text when they are UTF-8 and base64 otherwise, times RFC 3339, non-finite
// floats strings.
func JSONValue(v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case []byte:
		return bytesValue(x)
	case string:
		if utf8.ValidString(x) {
			return x
		}
		return base64.StdEncoding.EncodeToString([]byte(x))
	case time.Time:
		return x.Format(time.RFC3339Nano)
	case float64:
		return floatValue(x)
	case float32:
		return floatValue(float64(x))
	case bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return x
	case driver.Valuer:
		inner, err := x.Value()
		if err != nil {
			return fmt.Sprint(x)
		}
		if _, again := inner.(driver.Valuer); again {
			return fmt.Sprint(inner)
		}
		return JSONValue(inner)
	case fmt.Stringer:
		return x.String()
	default:
		if _, err := json.Marshal(x); err == nil {
			return x
		}
		return fmt.Sprint(x)
	}
}

func bytesValue(b []byte) any {
	if utf8.Valid(b) {
		return string(b)
	}
	return base64.StdEncoding.EncodeToString(b)
}

func floatValue(f float64) any {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return f
}

// CanonicalInt parses v when it is exactly how a database prints an integer: no sign on
// positives, no leading zeros, no spaces. Anything else ("042", "+42", " 42", "42.0") cannot
// equal an integer column's text, so an exact match is impossible.
func CanonicalInt(v string) (int64, bool) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || strconv.FormatInt(n, 10) != v {
		return 0, false
	}
	return n, true
}

// CanonicalUint is CanonicalInt for unsigned columns.
func CanonicalUint(v string) (uint64, bool) {
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || strconv.FormatUint(n, 10) != v {
		return 0, false
	}
	return n, true
}
