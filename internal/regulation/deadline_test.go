package regulation

import (
	"testing"
	"time"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
)

func TestDeadline(t *testing.T) {
	received := time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		reg  privacyv1alpha1.Regulation
		want time.Time
	}{
		{privacyv1alpha1.RegulationGDPR, time.Date(2026, 2, 15, 10, 0, 0, 0, time.UTC)},
		{privacyv1alpha1.RegulationUKGDPR, time.Date(2026, 2, 15, 10, 0, 0, 0, time.UTC)},
		{privacyv1alpha1.RegulationCCPA, time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)},
		{privacyv1alpha1.RegulationCPRA, time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)},
		{privacyv1alpha1.RegulationLGPD, time.Date(2026, 1, 30, 10, 0, 0, 0, time.UTC)},
		{privacyv1alpha1.RegulationPIPEDA, time.Date(2026, 2, 14, 10, 0, 0, 0, time.UTC)},
	}
	for _, tc := range cases {
		t.Run(string(tc.reg), func(t *testing.T) {
			got, err := Deadline(tc.reg, received)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(tc.want) {
				t.Fatalf("Deadline(%s) = %s, want %s", tc.reg, got, tc.want)
			}
		})
	}
	if _, err := Deadline("HIPAA", received); err == nil {
		t.Fatal("an unknown regulation must be an error")
	}
}

func TestOneMonthEndsOnTheLastDayOfAShortMonth(t *testing.T) {
	got, err := Deadline(privacyv1alpha1.RegulationGDPR, time.Date(2027, 1, 31, 9, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2027, 2, 28, 9, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestEveryRegulationOfTheAPIHasARule(t *testing.T) {
	for _, reg := range []privacyv1alpha1.Regulation{
		privacyv1alpha1.RegulationGDPR, privacyv1alpha1.RegulationUKGDPR, privacyv1alpha1.RegulationCCPA,
		privacyv1alpha1.RegulationCPRA, privacyv1alpha1.RegulationLGPD, privacyv1alpha1.RegulationPIPEDA,
	} {
		if r, ok := Rules[reg]; !ok || r.Source == "" {
			t.Errorf("regulation %s has no rule with a source", reg)
		}
	}
}
