package plugin

import (
	"fmt"
	"io"
	"strings"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
)

// Linked data in `kubectl dsr status`: what each store derived (counts only; the values live in the
// request's -derived Secret and never leave it), the records left alone because they are shared
// with someone else, and the copies a deep verification found outside the mapping. Auditors read
// these beside the erase counts, so a request that erased little because most of it was shared
// or unmapped is not mistaken for a clean one.

// printDerived lists the derived identifiers of every store, or nothing when there are none.
func printDerived(w io.Writer, request string, stores []privacyv1alpha1.StoreProgress) {
	var lines []string
	for _, s := range stores {
		for _, d := range s.Derived {
			line := fmt.Sprintf("  %s %s: %s", s.Name, d.Identifier, plural(int64(d.Values), "value"))
			if d.Shared > 0 {
				line += fmt.Sprintf(", %s shared with others (rows reached only through them are left alone)", plural(int64(d.Shared), "value"))
			}
			lines = append(lines, line)
		}
	}
	if len(lines) == 0 {
		return
	}
	fmt.Fprintf(w, "Derived identifiers (values only in Secret %s-derived):\n%s\n", request, strings.Join(lines, "\n"))
}

// printLocations lists the shared and unmapped records of every store, under a heading that says
// what they mean, or nothing when no store has any.
func printLocations(w io.Writer, stores []privacyv1alpha1.DeletionStoreStatus) {
	var shared, unmapped []string
	for _, s := range stores {
		shared = append(shared, locationLines(s.Name, s.Shared, s.SharedLocations)...)
		unmapped = append(unmapped, locationLines(s.Name, s.Unmapped, s.UnmappedLocations)...)
	}
	if len(shared) > 0 {
		fmt.Fprintf(w, "Shared (also someone else's: left untouched, not remaining):\n%s\n", strings.Join(shared, "\n"))
	}
	if len(unmapped) > 0 {
		fmt.Fprintf(w, "Unmapped (copies outside the mapping, found by deep verification: map or erase them):\n%s\n", strings.Join(unmapped, "\n"))
	}
}

// locationLines is one line per location, or one line with the store's total when the status
// has a total without locations (an http store reports only the number).
func locationLines(store string, total int64, locs []privacyv1alpha1.LocationRecords) []string {
	if total == 0 && len(locs) == 0 {
		return nil
	}
	if len(locs) == 0 {
		return []string{fmt.Sprintf("  %s: %s", store, plural(total, "record"))}
	}
	lines := make([]string, 0, len(locs))
	for _, l := range locs {
		lines = append(lines, fmt.Sprintf("  %s %s: %s", store, l.Location, plural(l.Records, "record")))
	}
	return lines
}

func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func deletionProgress(stores []privacyv1alpha1.DeletionStoreStatus) []privacyv1alpha1.StoreProgress {
	out := make([]privacyv1alpha1.StoreProgress, len(stores))
	for i, s := range stores {
		out[i] = s.StoreProgress
	}
	return out
}

func accessProgress(stores []privacyv1alpha1.AccessStoreStatus) []privacyv1alpha1.StoreProgress {
	out := make([]privacyv1alpha1.StoreProgress, len(stores))
	for i, s := range stores {
		out[i] = s.StoreProgress
	}
	return out
}
