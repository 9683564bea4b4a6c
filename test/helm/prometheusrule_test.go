package helm

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// metricNameInSource finds the names the operator registers its metrics under.
var metricNameInSource = regexp.MustCompile(`(?:Name:\s*|NewDesc\()"(dsr_[a-z0-9_]+)"`)

// operatorMetrics are the metric names registered in the operator's Go source (tests excluded).
func operatorMetrics(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, dir := range []string{"internal", "controllers"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range metricNameInSource.FindAllStringSubmatch(string(src), -1) {
				out[m[1]] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(out) < 5 {
		t.Fatalf("found only %v in the source: is the pattern stale?", out)
	}
	return out
}

func TestChartPrometheusRule(t *testing.T) {
	if rules := kinds(render(t), "PrometheusRule"); len(rules) != 0 {
		t.Errorf("a PrometheusRule is rendered although prometheusRule.enabled is false")
	}
	objs := render(t, "--set", "prometheusRule.enabled=true", "--set", "prometheusRule.labels.release=prometheus",
		"--set", "prometheusRule.alertLabels.team=privacy")
	rule := find(t, objs, "PrometheusRule", release+"-dsr-operator")
	if rule.GetAPIVersion() != "monitoring.coreos.com/v1" || rule.GetNamespace() != namespace || rule.GetLabels()["release"] != "prometheus" {
		t.Errorf("PrometheusRule %s in %q, labels %v", rule.GetAPIVersion(), rule.GetNamespace(), rule.GetLabels())
	}
	known := operatorMetrics(t)
	groups, _, _ := unstructured.NestedSlice(rule.Object, "spec", "groups")
	if len(groups) != 1 {
		t.Fatalf("groups %v", groups)
	}
	rules, _, _ := unstructured.NestedSlice(groups[0].(map[string]any), "rules")
	got := map[string]string{}
	usesMetric := regexp.MustCompile(`dsr_[a-z0-9_]+`)
	for _, r := range rules {
		r := r.(map[string]any)
		name, _ := r["alert"].(string)
		expr, _ := r["expr"].(string)
		got[name] = expr
		metrics := usesMetric.FindAllString(expr, -1)
		if len(metrics) == 0 {
			t.Errorf("%s: expression %q uses no operator metric", name, expr)
		}
		for _, m := range metrics {
			if !known[m] {
				t.Errorf("%s: %s is not a metric the operator registers (%v)", name, m, slices.Sorted(func(yield func(string) bool) {
					for k := range known {
						if !yield(k) {
							return
						}
					}
				}))
			}
		}
		labels, _ := r["labels"].(map[string]any)
		if labels["team"] != "privacy" || labels["severity"] == nil {
			t.Errorf("%s: labels %v, want a severity and the alertLabels", name, labels)
		}
		if strings.Contains(expr, "{{") {
			t.Errorf("%s: unrendered template in %q", name, expr)
		}
	}
	for name, metric := range map[string]string{
		"DSRRequestOverdue":           "dsr_requests_overdue",
		"DSRDataReappeared":           "dsr_reappearances_total",
		"DSRSuppressedDataReappeared": "dsr_suppression_reappeared_total",
		"DSRSuppressionSweepFailing":  "dsr_suppression_sweeps_total",
	} {
		if !strings.Contains(got[name], metric) {
			t.Errorf("alert %s: expression %q, want one on %s", name, got[name], metric)
		}
	}
	if !strings.Contains(got["DSRSuppressionSweepFailing"], `result="failed"`) {
		t.Errorf("DSRSuppressionSweepFailing counts every sweep: %q", got["DSRSuppressionSweepFailing"])
	}
	// The docs list the same alerts.
	doc, err := os.ReadFile(filepath.Join(root, "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	for name := range got {
		if !strings.Contains(string(doc), name) {
			t.Errorf("docs/metrics.md does not list alert %s", name)
		}
	}
	out := run(t, nil, helm, "lint", "--strict", chartDir, "--set", "prometheusRule.enabled=true")
	if !strings.Contains(out, "0 chart(s) failed") {
		t.Errorf("%s", out)
	}
}
