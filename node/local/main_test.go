package local

import (
	"testing"

	"github.com/slapnode/slapnode/internal/testenv"
)

// TestMain keeps the machine-wide loopback registry out of the tests.
func TestMain(m *testing.M) { testenv.Main(m) }
