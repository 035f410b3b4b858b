package notify

// Test seams for the external tests (package notify_test).

// SetAfterSend installs the crash hook: f is called right after
// sendMessage returns; true makes the worker behave as if it died there.
// Call before Run.
func SetAfterSend(w *Worker, f func(id int64) bool) { w.afterSend = f }

// LeaseCycles returns how many times the worker has looked for due rows.
func LeaseCycles(w *Worker) int64 { return w.cycles.Load() }
