//go:build !race

package suppression

const raceEnabled = false
