package projects

import (
	"testing"

	"github.com/skydm/skydm/internal/testenv"
)

// TestMain stops the Postgres server of the store tests (internal/pgtest).
func TestMain(m *testing.M) { testenv.Main(m) }
