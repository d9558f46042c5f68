package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"

	"github.com/slapnode/slapnode/node/supervisor"
)

// systemd speaks sd_notify(3) to the service manager that started the
// daemon (Type=notify in node/slapnode.service), through go-systemd. Outside
// systemd (no NOTIFY_SOCKET) every call does nothing.
type systemd struct {
	logger *slog.Logger
}

func newSystemd(logger *slog.Logger) *systemd { return &systemd{logger: logger} }

func (s *systemd) notify(state string) bool {
	sent, err := sddaemon.SdNotify(false, state)
	if err != nil {
		s.logger.Warn("cannot notify systemd", "state", state, "err", err)
	}
	return sent
}

// ready says the daemon serves: the socket answers and the services of
// every partition were restored.
func (s *systemd) ready(sup *supervisor.Supervisor) {
	running, total := 0, 0
	for _, st := range sup.Status() {
		total++
		if st.Up() {
			running++
		}
	}
	if s.notify(fmt.Sprintf("READY=1\nSTATUS=serving %d services (%d up)", total, running)) {
		s.logger.Debug("told systemd READY=1")
	}
}

// stopping says the daemon is stopping its services.
func (s *systemd) stopping() {
	s.notify("STOPPING=1\nSTATUS=stopping every service")
}

// watchdog pings systemd's watchdog (WatchdogSec=) at half its interval
// while healthy says the daemon works: a daemon whose supervisor or socket
// is stuck stops pinging, and systemd restarts it. It returns a function
// that stops the pings and waits for them to end.
func (s *systemd) watchdog(ctx context.Context, healthy func() error) (stop func()) {
	interval, err := sddaemon.SdWatchdogEnabled(false)
	if err != nil {
		s.logger.Warn("systemd watchdog", "err", err)
	}
	if interval <= 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval / 2)
		defer t.Stop()
		s.logger.Debug("pinging the systemd watchdog", "every", (interval / 2).String())
		for {
			if err := healthy(); err != nil {
				s.logger.Error("not pinging the systemd watchdog", "err", err)
			} else {
				s.notify("WATCHDOG=1")
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}
