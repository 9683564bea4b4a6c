package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// Hostile objects the API server must refuse before the operator ever sees them. test/validation
// covers one broken rule per field (a table name with "; drop table", an unknown type, a glob
// before the placeholder, out-of-range durations, a missing field...); this table is what an
// attacker with create rights on the CRDs would try on top of that: other quoting characters,
// homoglyphs, NUL and CRLF, escaping out of the namespace, wrong types, overflowing durations,
// oversized fields and lists.

const (
	abusePostgres = `
apiVersion: privacy.dsr.dev/v1alpha1
kind: DataStore
spec:
  type: postgres
  connection:
    secretRef: {name: shop-db, key: dsn}
  tables:
  - name: public.users
    match:
    - {column: email, identifier: email}
    action: mask
    mask:
    - {column: name, strategy: redact}
`
	abuseRedis = `
apiVersion: privacy.dsr.dev/v1alpha1
kind: DataStore
spec:
  type: redis
  connection:
    secretRef: {name: shop-redis, key: url}
  keys:
  - {pattern: "session:{userId}:*", action: delete}
`
	abuseHTTP = `
apiVersion: privacy.dsr.dev/v1alpha1
kind: ClusterDataStore
spec:
  type: http
  connection:
    url: https://crm.example/dsr
    caSecretRef: {name: crm-ca, key: ca.crt}
  # Admits no namespace: the managers of the other tests would otherwise use it.
  namespaceSelector: {matchLabels: {dsr-e2e/admit: none}}
`
	abuseDeletion = `
apiVersion: privacy.dsr.dev/v1alpha1
kind: DeletionRequest
spec:
  subject:
    identifiersSecretRef: {name: subject-ids}
  regulation: GDPR
`
	abuseAccess = `
apiVersion: privacy.dsr.dev/v1alpha1
kind: AccessRequest
spec:
  subject:
    identifiersSecretRef: {name: subject-ids}
  regulation: GDPR
`
)

type abuseCase struct {
	name   string
	base   string
	mutate func(map[string]any)
	// strict sends the object as kubectl does by default (fieldValidation=Strict); without it,
	// unknown fields are pruned, which TestUnknownFieldsArePrunedNotApplied covers.
	strict bool
	// want are substrings of the API server's message: the field, and what is wrong.
	want []string
}

const tenMB = 10 << 20

func repeatList(n int, item func(i int) any) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = item(i)
	}
	return out
}

var abuseCases = []abuseCase{
	// Identifiers that try to break out of SQL quoting: the patterns allow [A-Za-z0-9_] only.
	{name: "table name closing a double-quoted identifier", base: abusePostgres, mutate: setPath("spec.tables[0].name", `users" WHERE 1=1; --`),
		want: []string{"spec.tables[0].name", "should match"}},
	{name: "table name closing a backtick identifier", base: abusePostgres, mutate: setPath("spec.tables[0].name", "users`; DROP TABLE users; --"),
		want: []string{"spec.tables[0].name", "should match"}},
	{name: "table name with a comment", base: abusePostgres, mutate: setPath("spec.tables[0].name", "users/**/"),
		want: []string{"spec.tables[0].name", "should match"}},
	{name: "table name with a Cyrillic homoglyph", base: abusePostgres, mutate: setPath("spec.tables[0].name", "us\u0435rs"),
		want: []string{"spec.tables[0].name", "should match"}},
	{name: "table name with a NUL", base: abusePostgres, mutate: setPath("spec.tables[0].name", "users\x00; DROP TABLE users"),
		want: []string{"spec.tables[0].name", "should match"}},
	{name: "schema closing its quote", base: abusePostgres, mutate: setPath("spec.tables[0].name", `public".users`),
		want: []string{"spec.tables[0].name", "should match"}},
	{name: "table name of 128 characters", base: abusePostgres, mutate: setPath("spec.tables[0].name", strings.Repeat("t", 128)),
		want: []string{"spec.tables[0].name", "Too long", "127"}},
	{name: "match column as an expression", base: abusePostgres, mutate: setPath("spec.tables[0].match[0].column", "email = email OR 1"),
		want: []string{"spec.tables[0].match[0].column", "should match"}},
	{name: "match column ending a statement", base: abusePostgres, mutate: setPath("spec.tables[0].match[0].column", "email;--"),
		want: []string{"spec.tables[0].match[0].column", "should match"}},
	{name: "match column of 64 characters", base: abusePostgres, mutate: setPath("spec.tables[0].match[0].column", strings.Repeat("c", 64)),
		want: []string{"spec.tables[0].match[0].column", "Too long", "63"}},
	{name: "identifier name with a quote", base: abusePostgres, mutate: setPath("spec.tables[0].match[0].identifier", "email'--"),
		want: []string{"spec.tables[0].match[0].identifier", "should match"}},
	{name: "identifier name in braces", base: abusePostgres, mutate: setPath("spec.tables[0].match[0].identifier", "{userId}"),
		want: []string{"spec.tables[0].match[0].identifier", "should match"}},
	{name: "mask column smuggling a second assignment", base: abusePostgres, mutate: setPath("spec.tables[0].mask[0].column", "name = 'x', email"),
		want: []string{"spec.tables[0].mask[0].column", "should match"}},

	// Oversized fields and lists.
	{name: "retainReason of 10 MB (refused before decoding)", base: abusePostgres, mutate: func(o map[string]any) {
		setPath("spec.tables[0].action", "retain")(o)
		delPath("spec.tables[0].mask")(o)
		setPath("spec.tables[0].retainReason", strings.Repeat("r", tenMB))(o)
	}, want: []string{"Request entity too large", "limit is"}},
	{name: "description of 1 MB", base: abusePostgres, mutate: setPath("spec.description", strings.Repeat("d", 1<<20)),
		want: []string{"spec.description", "Too long", "2048"}},
	{name: "33 purposes", base: abusePostgres, mutate: setPath("spec.purposes", repeatList(33, func(i int) any { return "p" + strconv.Itoa(i) })),
		want: []string{"spec.purposes", "must have at most 32 items"}},
	{name: "a recipient of 300 characters", base: abusePostgres, mutate: setPath("spec.recipients", []any{strings.Repeat("x", 300)}),
		want: []string{"spec.recipients[0]", "Too long", "256"}},
	{name: "17 match columns", base: abusePostgres, mutate: setPath("spec.tables[0].match", repeatList(17, func(i int) any {
		return map[string]any{"column": "c" + strconv.Itoa(i), "identifier": "email"}
	})), want: []string{"spec.tables[0].match", "must have at most 16 items"}},
	{name: "65 mask columns", base: abusePostgres, mutate: setPath("spec.tables[0].mask", repeatList(65, func(i int) any {
		return map[string]any{"column": "c" + strconv.Itoa(i), "strategy": "nullify"}
	})), want: []string{"spec.tables[0].mask", "must have at most 64 items"}},
	{name: "10000 tables", base: abusePostgres, mutate: setPath("spec.tables", repeatList(10000, func(i int) any {
		return map[string]any{"name": "t" + strconv.Itoa(i), "action": "delete", "match": []any{map[string]any{"column": "email", "identifier": "email"}}}
	})), want: []string{"spec.tables", "must have at most 128 items"}},
	{name: "129 key patterns", base: abuseRedis, mutate: setPath("spec.keys", repeatList(129, func(i int) any {
		return map[string]any{"pattern": fmt.Sprintf("k%d:{userId}", i), "action": "delete"}
	})), want: []string{"spec.keys", "must have at most 128 items"}},
	{name: "key pattern of 600 characters", base: abuseRedis, mutate: setPath("spec.keys[0].pattern", strings.Repeat("s", 590)+":{userId}"),
		want: []string{"spec.keys[0].pattern", "Too long", "512"}},

	// Wrong types.
	{name: "tables as a string", base: abusePostgres, mutate: setPath("spec.tables", "users"),
		want: []string{"spec.tables", `must be of type array`}},
	{name: "timeout as a number", base: abusePostgres, mutate: setPath("spec.connection.timeout", int64(30)),
		want: []string{"spec.connection.timeout", "must be of type string"}},
	{name: "secretRef as a string", base: abusePostgres, mutate: setPath("spec.connection.secretRef", "shop-db"),
		want: []string{"spec.connection.secretRef", "must be of type object"}},
	{name: "dryRun as a string", base: abuseDeletion, mutate: setPath("spec.dryRun", "yes"),
		want: []string{"spec.dryRun", "must be of type boolean"}},
	{name: "identifiersSecretRef as a string", base: abuseDeletion, mutate: setPath("spec.subject.identifiersSecretRef", "jane"),
		want: []string{"spec.subject.identifiersSecretRef", "must be of type object"}},
	{name: "storeSelector label value as an object", base: abuseDeletion, mutate: setPath("spec.storeSelector", map[string]any{"matchLabels": map[string]any{"tier": map[string]any{"$ne": "x"}}}),
		want: []string{"spec.storeSelector.matchLabels.tier", "must be of type string"}},
	{name: "receivedAt that is not a time", base: abuseDeletion, mutate: setPath("spec.receivedAt", "yesterday"),
		want: []string{"spec.receivedAt", "date-time"}},

	// Absurd durations.
	{name: "timeout that is not a duration", base: abusePostgres, mutate: setPath("spec.connection.timeout", "forever"),
		want: []string{"spec.connection.timeout", "type conversion error", "timeout must be between 1s and 10m"}},
	{name: "negative timeout", base: abusePostgres, mutate: setPath("spec.connection.timeout", "-5s"),
		want: []string{"spec.connection.timeout", "timeout must be between 1s and 10m"}},
	{name: "timeout of ten years", base: abusePostgres, mutate: setPath("spec.connection.timeout", "87600h"),
		want: []string{"spec.connection.timeout", "timeout must be between 1s and 10m"}},
	{name: "checkInterval overflowing a duration", base: abusePostgres, mutate: setPath("spec.checkInterval", "9999999999h"),
		want: []string{"spec.checkInterval", "type conversion error", "checkInterval must be between 10s and 24h"}},
	{name: "negative reverifyPeriod", base: abuseDeletion, mutate: setPath("spec.verification", map[string]any{"reverifyPeriod": "-1h"}),
		want: []string{"spec.verification.reverifyPeriod", "reverifyPeriod must be between 0s and 8760h"}},
	{name: "reverifyInterval of a millisecond", base: abuseDeletion, mutate: setPath("spec.verification", map[string]any{"reverifyInterval": "1ms"}),
		want: []string{"spec.verification.reverifyInterval", "reverifyInterval must be between 1s and 720h"}},
	{name: "negative export ttl", base: abuseAccess, mutate: setPath("spec.ttl", "-1h"),
		want: []string{"spec.ttl", "ttl must be between 1s and 2160h"}},

	// Unknown store types and enum look-alikes.
	{name: "store type in capitals", base: abusePostgres, mutate: setPath("spec.type", "Postgres"),
		want: []string{"spec.type", `Unsupported value: "Postgres"`}},
	{name: "store type alias", base: abusePostgres, mutate: setPath("spec.type", "postgresql"),
		want: []string{"spec.type", `Unsupported value: "postgresql"`}},
	{name: "empty store type", base: abusePostgres, mutate: setPath("spec.type", ""),
		want: []string{"spec.type", `Unsupported value: ""`}},
	{name: "regulation with a trailing space", base: abuseDeletion, mutate: setPath("spec.regulation", "GDPR "),
		want: []string{"spec.regulation", `Unsupported value: "GDPR "`}},
	{name: "export format with a shell command", base: abuseAccess, mutate: setPath("spec.format", "json; rm -rf /"),
		want: []string{"spec.format", "Unsupported value"}},

	// Reaching outside the namespace.
	{name: "secretRef with a namespace", base: abusePostgres, strict: true, mutate: setPath("spec.connection.secretRef.namespace", "kube-system"),
		want: []string{"strict decoding error", `unknown field "spec.connection.secretRef.namespace"`}},
	{name: "secretRef name with a slash", base: abusePostgres, mutate: setPath("spec.connection.secretRef.name", "kube-system/admin"),
		want: []string{"spec.connection.secretRef.name", "should match"}},
	{name: "secretRef name climbing up", base: abusePostgres, mutate: setPath("spec.connection.secretRef.name", "../admin"),
		want: []string{"spec.connection.secretRef.name", "should match"}},
	{name: "secretRef key with a path", base: abusePostgres, mutate: setPath("spec.connection.secretRef.key", "dsn/../../token"),
		want: []string{"spec.connection.secretRef.key", "should match"}},
	{name: "caSecretRef name with a slash", base: abuseHTTP, mutate: setPath("spec.connection.caSecretRef.name", "kube-system/ca"),
		want: []string{"spec.connection.caSecretRef.name", "should match"}},
	{name: "identifiersSecretRef in another namespace", base: abuseDeletion, strict: true, mutate: setPath("spec.subject.identifiersSecretRef.namespace", "hr"),
		want: []string{"strict decoding error", `unknown field "spec.subject.identifiersSecretRef.namespace"`}},
	{name: "identifiersSecretRef name with a slash", base: abuseDeletion, mutate: setPath("spec.subject.identifiersSecretRef.name", "hr/jane"),
		want: []string{"spec.subject.identifiersSecretRef.name", "should match"}},
	{name: "identifiersSecretRef name of 254 characters", base: abuseDeletion, mutate: setPath("spec.subject.identifiersSecretRef.name", strings.Repeat("a", 254)),
		want: []string{"spec.subject.identifiersSecretRef.name", "Too long", "253"}},
	{name: "namespaceSelector on a namespaced DataStore", base: abusePostgres, strict: true, mutate: setPath("spec.namespaceSelector", map[string]any{}),
		want: []string{"strict decoding error", `unknown field "spec.namespaceSelector"`}},

	// Key patterns with globs in the wrong place, escapes and protocol characters.
	{name: "key pattern with a character class", base: abuseRedis, mutate: setPath("spec.keys[0].pattern", "session:{userId}:[a-z]*"),
		want: []string{"spec.keys[0].pattern", "should match"}},
	{name: "key pattern with an escaped glob", base: abuseRedis, mutate: setPath("spec.keys[0].pattern", `session:{userId}\*`),
		want: []string{"spec.keys[0].pattern", "should match"}},
	{name: "key pattern with a double glob", base: abuseRedis, mutate: setPath("spec.keys[0].pattern", "session:{userId}:**"),
		want: []string{"spec.keys[0].pattern", "should match"}},
	{name: "key pattern with a glob between literals", base: abuseRedis, mutate: setPath("spec.keys[0].pattern", "session:*:{userId}"),
		want: []string{"spec.keys[0].pattern", "should match"}},
	{name: "key pattern with CRLF", base: abuseRedis, mutate: setPath("spec.keys[0].pattern", "session:{userId}\r\nFLUSHALL\r\n"),
		want: []string{"spec.keys[0].pattern", "should match"}},
	{name: "key pattern with nested braces", base: abuseRedis, mutate: setPath("spec.keys[0].pattern", "session:{{userId}}"),
		want: []string{"spec.keys[0].pattern", "should match"}},

	// URLs of http stores.
	{name: "url with a header injection", base: abuseHTTP, mutate: setPath("spec.connection.url", "https://crm.example/dsr\r\nHost: evil.example"),
		want: []string{"spec.connection.url", "should match"}},
	{name: "javascript url", base: abuseHTTP, mutate: setPath("spec.connection.url", "javascript:alert(1)"),
		want: []string{"spec.connection.url", "should match"}},
	{name: "file url", base: abuseHTTP, mutate: setPath("spec.connection.url", "file:///var/run/secrets/kubernetes.io/serviceaccount/token"),
		want: []string{"spec.connection.url", "should match"}},
	{name: "url of 3000 characters", base: abuseHTTP, mutate: setPath("spec.connection.url", "https://crm.example/"+strings.Repeat("a", 3000)),
		want: []string{"spec.connection.url", "Too long", "2048"}},
}

func TestTheAPIServerRefusesHostileObjects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := newNamespace(t, env.Client, nil)

	// Each case changes one valid object: were a base refused, its cases would pass for the
	// wrong reason.
	for i, base := range []string{abusePostgres, abuseRedis, abuseHTTP, abuseDeletion, abuseAccess} {
		obj := abuseObject(t, base, fmt.Sprintf("base-%d", i), ns)
		if err := env.Client.Create(ctx, obj, client.FieldValidation("Strict")); err != nil {
			t.Fatalf("the valid %s was refused: %v", obj.GetKind(), err)
		}
		t.Cleanup(func() { _ = env.Client.Delete(context.Background(), obj) })
	}
	kinds := map[string]int{}
	for i, tc := range abuseCases {
		t.Run(tc.name, func(t *testing.T) {
			obj := abuseObject(t, tc.base, fmt.Sprintf("case-%d", i), ns)
			tc.mutate(obj.Object)
			kinds[obj.GetKind()]++
			var opts []client.CreateOption
			if tc.strict {
				opts = append(opts, client.FieldValidation("Strict"))
			}
			err := env.Client.Create(ctx, obj, opts...)
			if err == nil {
				_ = env.Client.Delete(ctx, obj)
				t.Fatalf("the API server accepted it")
			}
			if !apierrors.IsInvalid(err) && !apierrors.IsBadRequest(err) && !apierrors.IsRequestEntityTooLargeError(err) {
				t.Errorf("refused, but not as invalid, bad or too large: %v", err)
			}
			msg := err.Error()
			for _, want := range tc.want {
				if !strings.Contains(msg, want) {
					t.Errorf("the message does not say %q:\n%.600s", want, msg)
				}
			}
		})
	}
	if len(abuseCases) < 30 {
		t.Errorf("only %d hostile objects", len(abuseCases))
	}
	for _, kind := range []string{"DataStore", "ClusterDataStore", "DeletionRequest", "AccessRequest"} {
		if kinds[kind] == 0 {
			t.Errorf("no hostile %s was tried", kind)
		}
	}
}

// TestUnknownFieldsArePrunedNotApplied: a client that does not ask for strict validation gets its
// object stored without the fields the schema does not know, so a smuggled namespace cannot take
// effect either way.
func TestUnknownFieldsArePrunedNotApplied(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := newNamespace(t, env.Client, nil)
	cases := []struct {
		base, path string
	}{
		{abusePostgres, "spec.connection.secretRef.namespace"},
		{abuseDeletion, "spec.subject.identifiersSecretRef.namespace"},
		{abusePostgres, "spec.namespaceSelector"},
	}
	for i, tc := range cases {
		obj := abuseObject(t, tc.base, fmt.Sprintf("pruned-%d", i), ns)
		setPath(tc.path, "kube-system")(obj.Object)
		if err := env.Client.Create(ctx, obj); err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		stored := &unstructured.Unstructured{}
		stored.SetGroupVersionKind(obj.GroupVersionKind())
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(obj), stored); err != nil {
			t.Fatal(err)
		}
		if _, found := lookupPath(stored.Object, tc.path); found {
			t.Errorf("%s was stored", tc.path)
		}
	}
}

func abuseObject(t *testing.T, manifest, name, ns string) *unstructured.Unstructured {
	t.Helper()
	obj := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(manifest), &obj.Object); err != nil {
		t.Fatal(err)
	}
	if obj.GetKind() == "ClusterDataStore" {
		obj.SetName(ns + "-" + name)
	} else {
		obj.SetNamespace(ns)
		obj.SetName(name)
	}
	return obj
}

// setPath returns a mutation that sets the field at a path such as "spec.tables[0].name",
// creating the objects above it.
func setPath(path string, value any) func(map[string]any) {
	return func(obj map[string]any) {
		parent, key := walkPath(obj, path, true)
		parent[key] = value
	}
}

// delPath returns a mutation that removes the field at path.
func delPath(path string) func(map[string]any) {
	return func(obj map[string]any) {
		parent, key := walkPath(obj, path, false)
		if parent == nil {
			panic("delPath: no " + path)
		}
		delete(parent, key)
	}
}

func lookupPath(obj map[string]any, path string) (any, bool) {
	parent, key := walkPath(obj, path, false)
	if parent == nil {
		return nil, false
	}
	v, ok := parent[key]
	return v, ok
}

// walkPath returns the map holding the last step of path and that step's key. A broken path is a
// broken test case, so it panics.
func walkPath(obj map[string]any, path string, create bool) (map[string]any, string) {
	steps := strings.Split(path, ".")
	current := obj
	for n, step := range steps {
		key, index := step, -1
		if open := strings.IndexByte(step, '['); open >= 0 {
			i, err := strconv.Atoi(strings.TrimSuffix(step[open+1:], "]"))
			if err != nil {
				panic("bad path " + path)
			}
			key, index = step[:open], i
		}
		if n == len(steps)-1 && index < 0 {
			return current, key
		}
		next, ok := current[key]
		if !ok {
			if !create || index >= 0 {
				return nil, ""
			}
			next = map[string]any{}
			current[key] = next
		}
		if index >= 0 {
			next = next.([]any)[index]
		}
		current = next.(map[string]any)
	}
	return nil, ""
}

// TestStatusCannotBeForgedOnCreate: the status subresource drops a status sent with the object, so
// a requester cannot create a request that claims to be completed and verified with a receipt.
func TestStatusCannotBeForgedOnCreate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := newNamespace(t, env.Client, nil)
	obj := abuseObject(t, abuseDeletion, "forged", ns)
	setPath("status", map[string]any{
		"phase":         "Completed",
		"subjectDigest": "sha256:" + strings.Repeat("0", 64),
		"conditions": []any{map[string]any{"type": "Verified", "status": "True", "reason": "Verified", "message": "forged",
			"lastTransitionTime": "2020-01-01T00:00:00Z"}},
		"receipt": map[string]any{"configMapName": "forged-receipt", "sha256": strings.Repeat("0", 64), "signature": "Zm9yZ2Vk",
			"keyID": "0000000000000000", "issuedAt": "2020-01-01T00:00:00Z"},
	})(obj.Object)
	if err := env.Client.Create(ctx, obj); err != nil {
		t.Fatal(err)
	}
	stored := &unstructured.Unstructured{}
	stored.SetGroupVersionKind(obj.GroupVersionKind())
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(obj), stored); err != nil {
		t.Fatal(err)
	}
	// The operator may have written a status of its own by now (the request has no store, so it is
	// refused): none of the forged one may be in it.
	status, _ := stored.Object["status"].(map[string]any)
	forged := []string{}
	if status["phase"] == "Completed" {
		forged = append(forged, "phase Completed")
	}
	if _, ok := status["receipt"]; ok {
		forged = append(forged, "a receipt")
	}
	if status["subjectDigest"] == "sha256:"+strings.Repeat("0", 64) {
		forged = append(forged, "the forged subject digest")
	}
	conds, _ := status["conditions"].([]any)
	for _, c := range conds {
		if c.(map[string]any)["message"] == "forged" {
			forged = append(forged, "the forged Verified condition")
		}
	}
	if len(forged) > 0 {
		t.Errorf("the status sent on create was stored (%s): %v", strings.Join(forged, ", "), status)
	}
}
