package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/dsr-operator/dsr-operator/internal/testenv"
)

// permission is what the manager needs on one resource, and why. The lists below are the
// reviewed statement of the operator's privileges: TestManagerRBACIsExactlyWhatItNeeds fails when
// config/rbac grants more or less, and every manager process in this package runs with exactly
// these permissions (managerKubeconfig), which proves they are enough.
type permission struct {
	group, resource string
	verbs           []string
	why             string
}

var expectedManagerRules = []permission{
	{"", "configmaps", []string{"create", "delete", "get", "list", "update"},
		"receipts: create <request>-receipt in the request's namespace; get and update it only when a crashed reconcile left one that the request controls; " +
			"list (label-selected, metadata only, hourly) and delete: a receipt is removed at the end of its records period. " +
			"The receipt public key ConfigMap in the operator namespace: get, create on first start, update when the key changes."},
	{"", "namespaces", []string{"get", "list", "watch"},
		"a ClusterDataStore's namespaceSelector is matched against the request namespace's labels (read through the cache)"},
	{"", "secrets", []string{"create", "delete", "get", "update"},
		"get: identifiers, connection and CA Secrets, the salt, the signing key and the suppression key, a DROP download, a SuppressionList's index and chunks, always by direct GET, never cached; " +
			"stores poll their Secrets' resourceVersions and a list's index names every chunk (no list/watch). " +
			"create: the access export, a list's chunks, index and DROP report, and the salt and keys on first start; update: an export Secret left by a crashed reconcile, a list's index and report; " +
			"delete: expired exports, the identifiers Secret after the verification period, a list's retired chunks."},
	{"events.k8s.io", "events", []string{"create", "patch"},
		"events on requests and stores (events.k8s.io/v1 recorder)"},
	{"privacy.dsr.dev", "accessrequests", []string{"get", "list", "watch", "patch"}, "reconciled; patch only adds and removes the export-destination finalizer (files in a bucket are deleted before a request goes), never the spec"},
	{"privacy.dsr.dev", "deletionrequests", []string{"get", "list", "watch"}, "reconciled; the operator never changes a spec"},
	{"privacy.dsr.dev", "datastores", []string{"get", "list", "watch"}, "checked and resolved; the operator never changes a spec"},
	{"privacy.dsr.dev", "clusterdatastores", []string{"get", "list", "watch"}, "checked and resolved; the operator never changes a spec"},
	{"privacy.dsr.dev", "suppressionlists", []string{"get", "list", "watch"},
		"reconciled (sweeps), and listed by the DeletionRequest controller to feed the lists of the namespace; the operator never changes a spec"},
	{"privacy.dsr.dev", "accessrequests/status", []string{"get", "patch"}, "status is written with optimistic-lock merge patches"},
	{"privacy.dsr.dev", "deletionrequests/status", []string{"get", "patch"}, "status is written with optimistic-lock merge patches"},
	{"privacy.dsr.dev", "datastores/status", []string{"get", "patch"}, "health checks write Ready"},
	{"privacy.dsr.dev", "clusterdatastores/status", []string{"get", "patch"}, "health checks write Ready"},
	{"privacy.dsr.dev", "suppressionlists/status", []string{"get", "patch"}, "sweep results, written with optimistic-lock merge patches"},
	{"privacy.dsr.dev", "suppressionlists/finalizers", []string{"update"},
		"a list's chunks, index and report are owned by it with blockOwnerDeletion, which the OwnerReferencesPermissionEnforcement admission plugin allows only to who may update the owner's finalizers; the operator adds no finalizer"},
}

// expectedLeaderElectionRules hold in the operator namespace only.
var expectedLeaderElectionRules = []permission{
	{"coordination.k8s.io", "leases", []string{"create", "get", "update"},
		"client-go's LeaseLock gets, creates and renews (updates) the lease; it never lists, watches, patches or deletes it"},
	{"", "events", []string{"create", "patch"},
		"controller-runtime's leader election records \"became leader\" with the core/v1 event recorder"},
}

type grant struct{ group, resource, verb string }

func (g grant) String() string {
	group := g.group
	if group == "" {
		group = "core"
	}
	return fmt.Sprintf("%s %s/%s", g.verb, group, g.resource)
}

func flatten(rules []rbacv1.PolicyRule) map[grant]bool {
	out := map[grant]bool{}
	for _, r := range rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					out[grant{g, res, v}] = true
				}
			}
		}
	}
	return out
}

func policyRules(perms []permission) []rbacv1.PolicyRule {
	rules := make([]rbacv1.PolicyRule, len(perms))
	for i, p := range perms {
		rules[i] = rbacv1.PolicyRule{APIGroups: []string{p.group}, Resources: []string{p.resource}, Verbs: p.verbs}
	}
	return rules
}

func readRules(t *testing.T, rel string) []rbacv1.PolicyRule {
	t.Helper()
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	var role struct {
		Kind  string              `json:"kind"`
		Rules []rbacv1.PolicyRule `json:"rules"`
	}
	if err := yaml.Unmarshal(raw, &role); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	if len(role.Rules) == 0 {
		t.Fatalf("%s has no rules", rel)
	}
	for _, r := range role.Rules {
		if len(r.NonResourceURLs) > 0 || len(r.ResourceNames) > 0 {
			t.Errorf("%s: unexpected rule shape %+v", rel, r)
		}
	}
	return role.Rules
}

func compareGrants(t *testing.T, file string, got []rbacv1.PolicyRule, want []permission) {
	t.Helper()
	have, need := flatten(got), flatten(policyRules(want))
	var extra, missing []string
	for g := range have {
		if g.group == "*" || g.resource == "*" || g.verb == "*" {
			t.Errorf("%s grants a wildcard: %s", file, g)
		}
		if !need[g] {
			extra = append(extra, g.String())
		}
	}
	for g := range need {
		if !have[g] {
			missing = append(missing, g.String())
		}
	}
	sort.Strings(extra)
	sort.Strings(missing)
	if len(extra) > 0 {
		t.Errorf("%s grants what the operator does not need (remove it, or add it to the expected list in rbac_test.go with the reason):\n  %s",
			file, strings.Join(extra, "\n  "))
	}
	if len(missing) > 0 {
		t.Errorf("%s lacks what the operator needs:\n  %s", file, strings.Join(missing, "\n  "))
	}
}

func TestManagerRBACIsExactlyWhatItNeeds(t *testing.T) {
	t.Parallel()
	compareGrants(t, "config/rbac/role.yaml", readRules(t, "config/rbac/role.yaml"), expectedManagerRules)
}

func TestLeaderElectionRBACIsExactlyWhatItNeeds(t *testing.T) {
	t.Parallel()
	compareGrants(t, "config/rbac/leader_election_role.yaml", readRules(t, "config/rbac/leader_election_role.yaml"), expectedLeaderElectionRules)
}
