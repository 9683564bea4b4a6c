package requests_test

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/dsr-operator/dsr-operator/internal/requests"
	"github.com/dsr-operator/dsr-operator/internal/testbuilders"
)

func TestDerivedNameFitsEveryValidName(t *testing.T) {
	if got := requests.DerivedName("jane", "-receipt"); got != "jane-receipt" {
		t.Errorf("a usual name changed: %s", got)
	}
	long := testbuilders.LongName(253)
	other := long[:252] + "z"
	seen := map[string]bool{}
	for _, name := range []string{long, other, testbuilders.LongName(246), testbuilders.LongName(200)} {
		for _, suffix := range []string{"-receipt", "-export"} {
			got := requests.DerivedName(name, suffix)
			if errs := validation.IsDNS1123Subdomain(got); len(errs) > 0 {
				t.Errorf("%d characters + %s: %v", len(name), suffix, errs)
			}
			if !strings.HasSuffix(got, suffix) || seen[got] {
				t.Errorf("%s: not unique or without its suffix", got)
			}
			seen[got] = true
		}
	}
}

func TestRequestLabelsAreValid(t *testing.T) {
	for _, name := range []string{"jane", testbuilders.LongName(64), testbuilders.LongName(253)} {
		labels := requests.RequestLabels("privacy.dsr.dev/deletionrequest", name, "0b5a3c1e-1111-2222-3333-444455556666")
		for k, v := range labels {
			if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
				t.Errorf("%s=%s: %v", k, v, errs)
			}
		}
		if _, ok := labels["privacy.dsr.dev/deletionrequest"]; !ok {
			t.Error("the name key is missing")
		}
	}
}
