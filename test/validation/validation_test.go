// Package validation proves that the API server itself refuses malformed stores and requests:
// the CRDs' schemas and CEL rules are the first line of defence (a bad table name never reaches a
// connector), so each rule is exercised here against a real kube-apiserver.
package validation

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/yaml"

	"github.com/dsr-operator/dsr-operator/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard())
	var err error
	env, err = testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// Valid objects of each kind; every case below changes one thing in one of them.
const (
	postgresStore = `
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
    action: delete
`
	redisStore = `
apiVersion: privacy.dsr.dev/v1alpha1
kind: DataStore
spec:
  type: redis
  connection:
    secretRef: {name: shop-redis, key: url}
  keys:
  - {pattern: "session:{userId}:*", action: delete}
`
	httpClusterStore = `
apiVersion: privacy.dsr.dev/v1alpha1
kind: ClusterDataStore
spec:
  type: http
  connection:
    url: https://crm.example/dsr
  namespaceSelector: {}
`
	deletionRequest = `
apiVersion: privacy.dsr.dev/v1alpha1
kind: DeletionRequest
spec:
  subject:
    identifiersSecretRef: {name: subject-ids}
  regulation: GDPR
`
	accessRequest = `
apiVersion: privacy.dsr.dev/v1alpha1
kind: AccessRequest
spec:
  subject:
    identifiersSecretRef: {name: subject-ids}
  regulation: GDPR
`
)

type invalidCase struct {
	name   string
	base   string
	mutate func(obj map[string]any)
	// want are substrings of the API server's message: the field path, and what is wrong.
	want []string
}

var invalidCases = []invalidCase{
	{"unknown store type", postgresStore, set("spec.type", "cassandra"),
		[]string{"spec.type", `Unsupported value: "cassandra"`}},
	{"SQL injection in a table name", postgresStore, set("spec.tables[0].name", "users; drop table x"),
		[]string{"spec.tables[0].name", "should match"}},
	{"table name with three parts", postgresStore, set("spec.tables[0].name", "db.public.users"),
		[]string{"spec.tables[0].name", "should match"}},
	{"match column with a space", postgresStore, set("spec.tables[0].match[0].column", "first name"),
		[]string{"spec.tables[0].match[0].column", "should match"}},
	{"mask column with a quote", postgresStore, func(o map[string]any) {
		set("spec.tables[0].action", "mask")(o)
		set("spec.tables[0].mask", []any{map[string]any{"column": `name"--`, "strategy": "redact"}})(o)
	}, []string{"spec.tables[0].mask[0].column", "should match"}},
	{"match identifier starting with a digit", postgresStore, set("spec.tables[0].match[0].identifier", "1email"),
		[]string{"spec.tables[0].match[0].identifier", "should match"}},
	{"provides column with a quote", postgresStore,
		set("spec.tables[0].provides", []any{map[string]any{"identifier": "customerId", "column": `id"--`}}),
		[]string{"spec.tables[0].provides[0].column", "should match"}},
	{"provides column with a space", postgresStore,
		set("spec.tables[0].provides", []any{map[string]any{"identifier": "customerId", "column": "customer id"}}),
		[]string{"spec.tables[0].provides[0].column", "should match"}},
	{"provides identifier starting with a digit", postgresStore,
		set("spec.tables[0].provides", []any{map[string]any{"identifier": "1customer", "column": "id"}}),
		[]string{"spec.tables[0].provides[0].identifier", "should match"}},
	{"provides without column", postgresStore,
		set("spec.tables[0].provides", []any{map[string]any{"identifier": "customerId"}}),
		[]string{"spec.tables[0].provides[0].column", "Required value"}},
	{"table without match", postgresStore, set("spec.tables[0].match", []any{}),
		[]string{"spec.tables[0].match", "at least 1"}},
	{"retain without retainReason", postgresStore, set("spec.tables[0].action", "retain"),
		[]string{"spec.tables[0].retainReason", "retainReason is required when action is retain"}},
	{"mask without mask columns", postgresStore, set("spec.tables[0].action", "mask"),
		[]string{"spec.tables[0].mask", "mask is required when action is mask"}},
	{"mask columns with action delete", postgresStore,
		set("spec.tables[0].mask", []any{map[string]any{"column": "name", "strategy": "nullify"}}),
		[]string{"spec.tables[0].mask", "mask is only allowed when action is mask"}},
	{"unknown mask strategy", postgresStore, func(o map[string]any) {
		set("spec.tables[0].action", "mask")(o)
		set("spec.tables[0].mask", []any{map[string]any{"column": "name", "strategy": "scramble"}})(o)
	}, []string{"spec.tables[0].mask[0].strategy", `Unsupported value: "scramble"`}},
	{"unknown table action", postgresStore, set("spec.tables[0].action", "truncate"),
		[]string{"spec.tables[0].action", `Unsupported value: "truncate"`}},
	{"sql store without tables", postgresStore, del("spec.tables"),
		[]string{"spec.tables", "tables is required for postgres, mysql and sqlite stores"}},
	{"too many tables", postgresStore, func(o map[string]any) {
		tables := make([]any, 129)
		for i := range tables {
			tables[i] = map[string]any{
				"name":   "t" + strconv.Itoa(i),
				"match":  []any{map[string]any{"column": "email", "identifier": "email"}},
				"action": "delete",
			}
		}
		set("spec.tables", tables)(o)
	}, []string{"spec.tables", "must have at most 128 items"}},
	{"keys on a sql store", postgresStore, set("spec.keys", []any{map[string]any{"pattern": "u:{userId}", "action": "delete"}}),
		[]string{"spec.keys", "keys is only allowed for redis stores"}},
	{"postgres store with a url", postgresStore, set("spec.connection.url", "https://db.example"),
		[]string{"spec.connection", "connection.url and connection.caSecretRef are only allowed for http and s3 stores"}},
	{"postgres store without secretRef", postgresStore, del("spec.connection.secretRef"),
		[]string{"spec.connection.secretRef", "connection.secretRef is required"}},
	{"secretRef with an invalid Secret name", postgresStore, set("spec.connection.secretRef.name", "Shop_DB"),
		[]string{"spec.connection.secretRef.name", "should match"}},
	{"secretRef without key", postgresStore, del("spec.connection.secretRef.key"),
		[]string{"spec.connection.secretRef.key", "Required value"}},
	{"timeout of 0s", postgresStore, set("spec.connection.timeout", "0s"),
		[]string{"spec.connection.timeout", "timeout must be between 1s and 10m"}},
	{"checkInterval of 1s", postgresStore, set("spec.checkInterval", "1s"),
		[]string{"spec.checkInterval", "checkInterval must be between 10s and 24h"}},
	{"checkInterval of 48h", postgresStore, set("spec.checkInterval", "48h"),
		[]string{"spec.checkInterval", "checkInterval must be between 10s and 24h"}},
	{"redis store without keys", redisStore, del("spec.keys"),
		[]string{"spec.keys", "keys is required for redis stores"}},
	{"tables on a redis store", redisStore, set("spec.tables", []any{map[string]any{
		"name": "users", "match": []any{map[string]any{"column": "id", "identifier": "userId"}}, "action": "delete",
	}}), []string{"spec.tables", "tables is only allowed for postgres, mysql and sqlite stores"}},
	{"redis pattern without placeholder", redisStore, set("spec.keys[0].pattern", "session:*"),
		[]string{"spec.keys[0].pattern", "should match"}},
	{"redis pattern with a glob before the placeholder", redisStore, set("spec.keys[0].pattern", "*{userId}"),
		[]string{"spec.keys[0].pattern", "should match"}},
	{"redis pattern with a glob right after the placeholder", redisStore, set("spec.keys[0].pattern", "{userId}*"),
		[]string{"spec.keys[0].pattern", "should match"}},
	{"redis pattern with a ? glob", redisStore, set("spec.keys[0].pattern", "user:{userId}:?"),
		[]string{"spec.keys[0].pattern", "should match"}},
	{"redis pattern with a bad placeholder name", redisStore, set("spec.keys[0].pattern", "user:{user id}"),
		[]string{"spec.keys[0].pattern", "should match"}},
	{"redis retain without retainReason", redisStore, set("spec.keys[0].action", "retain"),
		[]string{"spec.keys[0].retainReason", "retainReason is required when action is retain"}},
	{"redis key action mask", redisStore, set("spec.keys[0].action", "mask"),
		[]string{"spec.keys[0].action", `Unsupported value: "mask"`}},
	{"http store without url", httpClusterStore, del("spec.connection.url"),
		[]string{"spec.connection.url", "connection.url is required for http stores"}},
	{"http store with an ftp url", httpClusterStore, set("spec.connection.url", "ftp://crm.example/dsr"),
		[]string{"spec.connection.url", "should match"}},
	{"cluster store with an unknown type", httpClusterStore, set("spec.type", "ldap"),
		[]string{"spec.type", `Unsupported value: "ldap"`}},
	{"deletion request without subject", deletionRequest, del("spec.subject"),
		[]string{"spec.subject", "Required value"}},
	{"deletion request without identifiers Secret name", deletionRequest, del("spec.subject.identifiersSecretRef.name"),
		[]string{"spec.subject.identifiersSecretRef.name", "Required value"}},
	{"deletion request with an unknown regulation", deletionRequest, set("spec.regulation", "HIPAA"),
		[]string{"spec.regulation", `Unsupported value: "HIPAA"`}},
	{"deletion request without regulation", deletionRequest, del("spec.regulation"),
		[]string{"spec.regulation", "Required value"}},
	{"reverifyInterval of 0s", deletionRequest, set("spec.verification", map[string]any{"reverifyInterval": "0s"}),
		[]string{"spec.verification.reverifyInterval", "reverifyInterval must be between 1s and 720h"}},
	{"reverifyInterval of 100000h", deletionRequest, set("spec.verification", map[string]any{"reverifyInterval": "100000h"}),
		[]string{"spec.verification.reverifyInterval", "reverifyInterval must be between 1s and 720h"}},
	{"reverifyPeriod of 10000h", deletionRequest, set("spec.verification", map[string]any{"reverifyPeriod": "10000h"}),
		[]string{"spec.verification.reverifyPeriod", "reverifyPeriod must be between 0s and 8760h"}},
	{"access request without subject", accessRequest, del("spec.subject"),
		[]string{"spec.subject", "Required value"}},
	{"access request with a ttl of 10000h", accessRequest, set("spec.ttl", "10000h"),
		[]string{"spec.ttl", "ttl must be between 1s and 2160h"}},
	{"access request in xml", accessRequest, set("spec.format", "xml"),
		[]string{"spec.format", `Unsupported value: "xml"`}},
	{"access request with an unknown regulation", accessRequest, set("spec.regulation", "gdpr"),
		[]string{"spec.regulation", `Unsupported value: "gdpr"`}},
}

func TestTheAPIServerRefusesInvalidObjects(t *testing.T) {
	ctx := context.Background()
	namespace := createNamespace(t, "invalid")

	// Every case changes one valid object; were the base itself refused, each case would pass
	// for the wrong reason.
	for i, base := range []string{postgresStore, redisStore, httpClusterStore, deletionRequest, accessRequest} {
		obj := object(t, base, fmt.Sprintf("base-%d", i), namespace)
		if err := env.Client.Create(ctx, obj); err != nil {
			t.Fatalf("the valid %s was refused: %v", obj.GetKind(), err)
		}
	}

	kinds := map[string]int{}
	for i, tc := range invalidCases {
		t.Run(tc.name, func(t *testing.T) {
			obj := object(t, tc.base, fmt.Sprintf("case-%d", i), namespace)
			tc.mutate(obj.Object)
			kinds[obj.GetKind()]++
			err := env.Client.Create(ctx, obj)
			if err == nil {
				t.Fatalf("the API server accepted it:\n%s", dump(obj))
			}
			if !apierrors.IsInvalid(err) {
				t.Fatalf("refused, but not as invalid: %v", err)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the message does not say %q:\n%v", want, err)
				}
			}
		})
	}
	for _, kind := range []string{"DataStore", "ClusterDataStore", "DeletionRequest", "AccessRequest"} {
		if kinds[kind] == 0 {
			t.Errorf("no invalid %s was tried", kind)
		}
	}
}

func TestRequestSpecsAreImmutable(t *testing.T) {
	ctx := context.Background()
	namespace := createNamespace(t, "immutable")

	for _, base := range []string{deletionRequest, accessRequest} {
		obj := object(t, base, "request", namespace)
		if err := env.Client.Create(ctx, obj); err != nil {
			t.Fatalf("creating the %s: %v", obj.GetKind(), err)
		}

		// Labels may change: only the spec is frozen.
		obj.SetLabels(map[string]string{"ticket": "T-1"})
		if err := env.Client.Update(ctx, obj); err != nil {
			t.Fatalf("a label change on the %s was refused: %v", obj.GetKind(), err)
		}

		set("spec.regulation", "CCPA")(obj.Object)
		err := env.Client.Update(ctx, obj)
		if err == nil {
			t.Fatalf("the %s's spec was changed", obj.GetKind())
		}
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec is immutable") {
			t.Errorf("changing the %s's spec: got %v, want an invalid error saying the spec is immutable", obj.GetKind(), err)
		}
	}
}

func TestDefaultsAreApplied(t *testing.T) {
	ctx := context.Background()
	namespace := createNamespace(t, "defaults")

	cases := []struct {
		base  string
		field string
		want  string
	}{
		{deletionRequest, "spec.verification.reverifyInterval", "1h"},
		{deletionRequest, "spec.verification.reverifyPeriod", "720h"},
		{accessRequest, "spec.ttl", "168h"},
		{accessRequest, "spec.format", "json"},
		{postgresStore, "spec.checkInterval", "5m"},
		{postgresStore, "spec.connection.timeout", "30s"},
	}
	for i, tc := range cases {
		obj := object(t, tc.base, fmt.Sprintf("defaults-%d", i), namespace)
		if err := env.Client.Create(ctx, obj); err != nil {
			t.Fatalf("creating the %s: %v", obj.GetKind(), err)
		}
		got, ok := lookup(obj.Object, tc.field)
		if !ok {
			t.Errorf("%s: %s was not defaulted", obj.GetKind(), tc.field)
			continue
		}
		if !sameValue(fmt.Sprint(got), tc.want) {
			t.Errorf("%s: %s defaulted to %v, want %v", obj.GetKind(), tc.field, got, tc.want)
		}
	}
}

// sameValue compares durations by value: "1h" and "1h0m0s" are the same default.
func sameValue(got, want string) bool {
	if got == want {
		return true
	}
	g, errG := time.ParseDuration(got)
	w, errW := time.ParseDuration(want)
	return errG == nil && errW == nil && g == w
}

func createNamespace(t *testing.T, prefix string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating a namespace: %v", err)
	}
	return ns.Name
}

// object parses one of the valid objects above and names it. Cluster-scoped kinds ignore the
// namespace, so their names carry it to stay unique.
func object(t *testing.T, manifest, name, namespace string) *unstructured.Unstructured {
	t.Helper()
	obj := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(manifest), &obj.Object); err != nil {
		t.Fatalf("parsing a test manifest: %v", err)
	}
	namespaced, err := env.Client.IsObjectNamespaced(obj)
	if err != nil {
		t.Fatalf("looking up the scope of %s: %v", obj.GetKind(), err)
	}
	if namespaced {
		obj.SetNamespace(namespace)
		obj.SetName(name)
	} else {
		obj.SetName(namespace + "-" + name)
	}
	return obj
}

func dump(obj *unstructured.Unstructured) string {
	out, err := yaml.Marshal(obj.Object)
	if err != nil {
		return err.Error()
	}
	return string(out)
}
