package sqlstore

import (
	"strconv"
	"strings"
	"testing"
)

// Paged batches cover every page exactly once, the last range unbounded above, and hold about
// the batch size in rows.
func TestPagedBatches(t *testing.T) {
	pageStart := func(b *Builder, page int64) string { return b.Arg(page) + "::tid" }
	for _, tc := range []struct {
		name               string
		pages, rowsPerPage int64
		rows               int
		want               []string
	}{
		{name: "empty table", pages: 0, rowsPerPage: 50, rows: 3, want: []string{""}},
		{name: "fits one batch", pages: 2, rowsPerPage: 50, rows: 10000, want: []string{""}},
		{name: "a page a batch", pages: 3, rowsPerPage: 50, rows: 3, want: []string{
			"ctid < 1", "ctid >= 1 AND ctid < 2", "ctid >= 2"}},
		{name: "pages per batch", pages: 7, rowsPerPage: 2, rows: 6, want: []string{
			"ctid < 3", "ctid >= 3 AND ctid < 6", "ctid >= 6"}},
		{name: "last batch exactly full", pages: 6, rowsPerPage: 2, rows: 6, want: []string{
			"ctid < 3", "ctid >= 3"}},
		{name: "unknown rows per page", pages: 2, rowsPerPage: 0, rows: 1, want: []string{
			"ctid < 1", "ctid >= 1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := &ScanKey{Column: "ctid", Pages: tc.pages, RowsPerPage: tc.rowsPerPage, PageStart: pageStart}
			var got []string
			err := pagedBatches(stubDialect{}, key, tc.rows, func(batch scanBatch) error {
				// Write the bound pages into the condition to compare it as text.
				cond := batch.cond
				for i, arg := range batch.b.Args() {
					cond = strings.Replace(cond, "$"+strconv.Itoa(i+1)+"::tid", strconv.FormatInt(arg.(int64), 10), 1)
				}
				got = append(got, cond)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("want %q, got %q", tc.want, got)
			}
		})
	}
}
