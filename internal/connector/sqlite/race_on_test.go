//go:build race

package sqlite

// raceEnabled: the race detector slows the pure-Go SQLite driver about tenfold, too much for
// the million-row test and for a statement of twenty thousand parameters (over a minute on a
// loaded CI machine), which make test runs once more without it.
const raceEnabled = true
