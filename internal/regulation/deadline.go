// Package regulation knows the deadlines the laws set for answering a data-subject request.
package regulation

import (
	"fmt"
	"time"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
)

// Rule is how long a regulation gives to answer a request, and where that is written.
type Rule struct {
	// Months and Days add up; months are calendar months ("one month" under GDPR runs to the
	// same day of the next month).
	Months int
	Days   int
	Source string
}

// Rules is the one table of deadlines. Extensions a law allows (e.g. two further months under GDPR
// Art. 12(3) for complex requests) are not applied: the operator aims at the base deadline.
var Rules = map[privacyv1alpha1.Regulation]Rule{
	privacyv1alpha1.RegulationGDPR: {Months: 1,
		Source: "GDPR (EU) 2016/679 Art. 12(3): without undue delay and in any event within one month of receipt"},
	privacyv1alpha1.RegulationUKGDPR: {Months: 1,
		Source: "UK GDPR Art. 12(3): within one month of receipt"},
	privacyv1alpha1.RegulationCCPA: {Days: 45,
		Source: "California Civil Code §1798.130(a)(2): within 45 days of receiving a verifiable consumer request"},
	privacyv1alpha1.RegulationCPRA: {Days: 45,
		Source: "California Civil Code §1798.130(a)(2) as amended by the CPRA: within 45 days"},
	privacyv1alpha1.RegulationLGPD: {Days: 15,
		Source: "LGPD (Lei 13.709/2018) Art. 19(II): within 15 days of the data subject's request"},
	privacyv1alpha1.RegulationPIPEDA: {Days: 30,
		Source: "PIPEDA s. 8(3): no later than 30 days after receipt of the request"},
}

// Deadline returns when a request received at receivedAt must be answered under reg.
func Deadline(reg privacyv1alpha1.Regulation, receivedAt time.Time) (time.Time, error) {
	rule, ok := Rules[reg]
	if !ok {
		return time.Time{}, fmt.Errorf("no deadline is known for regulation %q", reg)
	}
	return addMonths(receivedAt, rule.Months).AddDate(0, 0, rule.Days), nil
}

// addMonths adds calendar months; when the target month is too short for the day (31 January plus
// one month), the period ends on its last day, as EU Regulation 1182/71 Art. 3(2)(c) counts it,
// rather than spilling into the month after as time.AddDate would.
func addMonths(t time.Time, months int) time.Time {
	if months == 0 {
		return t
	}
	firstOfTarget := time.Date(t.Year(), t.Month()+time.Month(months), 1, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), t.Location())
	lastDay := firstOfTarget.AddDate(0, 1, -1).Day()
	day := min(t.Day(), lastDay)
	return firstOfTarget.AddDate(0, 0, day-1)
}
