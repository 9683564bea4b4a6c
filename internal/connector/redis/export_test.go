package redis

// SetMaxDeepScanKeys lowers the deep scan's limit until the returned function restores it.
func SetMaxDeepScanKeys(n int) (restore func()) {
	old := maxDeepScanKeys
	maxDeepScanKeys = n
	return func() { maxDeepScanKeys = old }
}
