//go:build race

package suppression

// raceEnabled: the race detector is on. The million-entry storage test is skipped then: it has no
// concurrency for the detector to check, and runs about 7 times slower with 3 times the memory.
const raceEnabled = true
