//go:build race

package sqlite

// raceEnabled: the race detector slows the pure-Go SQLite driver about tenfold, too much for
// the million-row test, which make test runs once more without it.
const raceEnabled = true
