package pgtest

import (
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Backend is a store backend the contract tests run on.
type Backend string

// The backends: SQLite files and Postgres databases.
const (
	SQLite   Backend = "sqlite"
	Postgres Backend = "postgres"
)

// backends maps a running Each subtest's name to its backend.
var backends sync.Map // string → Backend

// Each runs f as the subtests "sqlite" and "postgres" of t: the same test
// on each backend. Inside f, and in its own subtests, DSN gives a fresh
// database of that backend.
func Each(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	each(t, f)
}

// EachB is Each for a benchmark: a pair, one per backend, to compare.
func EachB(b *testing.B, f func(b *testing.B)) {
	b.Helper()
	each(b, f)
}

// On runs f as the subtest of t named b, on backend b only: for what only
// one backend has (Postgres's row locks).
func On(t *testing.T, b Backend, f func(t *testing.T)) {
	t.Helper()
	on(t, b, f)
}

// runner is *testing.T or *testing.B.
type runner[T any] interface {
	testing.TB
	Run(name string, f func(T)) bool
}

func each[T runner[T]](t T, f func(T)) {
	t.Helper()
	for _, b := range []Backend{SQLite, Postgres} {
		on(t, b, f)
	}
}

func on[T runner[T]](t T, b Backend, f func(T)) {
	t.Helper()
	t.Run(string(b), func(t T) {
		if b == Postgres {
			ensure(t)
		}
		backends.Store(t.Name(), b)
		t.Cleanup(func() { backends.Delete(t.Name()) })
		f(t)
	})
}

// BackendOf is the backend of t: that of the Each subtest t is in (or
// under), else SQLite.
func BackendOf(t testing.TB) Backend {
	name := t.Name()
	for {
		if b, ok := backends.Load(name); ok {
			return b.(Backend)
		}
		i := strings.LastIndexByte(name, '/')
		if i < 0 {
			return SQLite
		}
		name = name[:i]
	}
}

// DSN returns the setting (db.Open's argument) of a new, empty database of
// t's backend (BackendOf): a file in a new temporary directory, or a
// Postgres database (URL), dropped when t ends.
func DSN(t testing.TB) string {
	t.Helper()
	if BackendOf(t) == Postgres {
		return URL(t)
	}
	return filepath.Join(t.TempDir(), "skydm.db")
}
