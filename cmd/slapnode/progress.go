package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/mattn/go-isatty"
)

// progress shows the steps that take long (compiling a module, a build,
// promises settling, waiting for a master). A step shorter than a second
// prints nothing. On a terminal the running step is one line redrawn in
// place with its elapsed time — "⠹ installing part web (cookbook:cmmi)… [8s]"
// — and erased when it ends; elsewhere (a log, a pipe) the step is named
// once, when it passes a second, and nothing more. -q shows nothing.
//
// Library packages never print: they call a hook (partition.Engine.Step)
// that lands here.
type progress struct {
	w     io.Writer
	tty   bool
	quiet bool
	// after is how long a step runs before it is shown; interval, how
	// often the display is refreshed (0: only when tick is called, in tests).
	after, interval time.Duration
	now             func() time.Time

	mu      sync.Mutex
	steps   []*step // running steps, the innermost last
	shown   bool    // a live line is on the terminal
	frame   int
	ticking bool
	done    chan struct{}
	wg      sync.WaitGroup
}

type step struct {
	what      string
	start     time.Time
	now       bool // known to be long (a wait): shown at once
	announced bool // named on a non-terminal
}

var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

func newProgress(w io.Writer, quiet bool) *progress {
	p := &progress{w: w, tty: isTerminal(w), quiet: quiet, after: time.Second, interval: 250 * time.Millisecond, now: time.Now, done: make(chan struct{})}
	if p.tty {
		p.interval = 100 * time.Millisecond
	}
	return p
}

// isTerminal reports whether w is a terminal that can redraw a line.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("TERM") == "dumb" {
		return false
	}
	return isatty.IsTerminal(f.Fd())
}

// begin starts a step; call the returned function when it ends.
func (p *progress) begin(what string) (end func()) { return p.beginStep(what, false) }

// beginNow starts a step known to be long (waiting for something else):
// it is named at once rather than after a second.
func (p *progress) beginNow(what string) (end func()) { return p.beginStep(what, true) }

func (p *progress) beginStep(what string, now bool) (end func()) {
	if p == nil || p.quiet {
		return func() {}
	}
	s := &step{what: what, start: p.now(), now: now}
	p.mu.Lock()
	p.steps = append(p.steps, s)
	if now && !p.tty {
		p.clearLocked()
		s.announced = true
		fmt.Fprintf(p.w, "%s…\n", s.what)
	}
	if !p.ticking && p.interval > 0 {
		p.ticking = true
		p.wg.Add(1)
		go p.loop()
	}
	p.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { p.end(s) }) }
}

func (p *progress) end(s *step) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, x := range p.steps {
		if x == s {
			p.steps = append(p.steps[:i], p.steps[i+1:]...)
			break
		}
	}
	p.clearLocked()
}

func (p *progress) loop() {
	defer p.wg.Done()
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-t.C:
			p.tick()
		}
	}
}

// tick draws the innermost running step, if it has run long enough.
func (p *progress) tick() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.steps) == 0 {
		return
	}
	s := p.steps[len(p.steps)-1]
	elapsed := p.now().Sub(s.start)
	if elapsed < p.after && !s.now {
		return
	}
	if !p.tty {
		if !s.announced {
			s.announced = true
			fmt.Fprintf(p.w, "%s…\n", s.what)
		}
		return
	}
	p.frame = (p.frame + 1) % len(spinner)
	fmt.Fprintf(p.w, "\r\033[K%s %s… [%ds]", spinner[p.frame], s.what, int(elapsed/time.Second))
	p.shown = true
}

func (p *progress) clearLocked() {
	if p.shown {
		fmt.Fprint(p.w, "\r\033[K")
		p.shown = false
	}
}

// stop ends the display (the command is over).
func (p *progress) stop() {
	if p == nil {
		return
	}
	p.mu.Lock()
	ticking := p.ticking
	p.ticking = false
	p.steps = nil
	p.clearLocked()
	p.mu.Unlock()
	if ticking {
		close(p.done)
		p.wg.Wait()
		p.done = make(chan struct{})
	}
}

// writer returns w made safe to print to while a live line may be on the
// terminal: the line is erased first, and redrawn at the next tick.
func (p *progress) writer(w io.Writer) io.Writer {
	if p == nil || w == nil {
		return w
	}
	return &progressWriter{p: p, w: w}
}

type progressWriter struct {
	p *progress
	w io.Writer
}

func (pw *progressWriter) Write(b []byte) (int, error) {
	pw.p.mu.Lock()
	defer pw.p.mu.Unlock()
	pw.p.clearLocked()
	return pw.w.Write(b)
}

// out is where a command prints what it does as it goes (the engine's
// "+ part" lines): nil under -q, so that only results are printed.
func (env *cliEnv) out() io.Writer {
	if env.quiet {
		return nil
	}
	return env.prog.writer(env.stdout)
}

// note prints a note for the user on stderr, unless -q.
func (env *cliEnv) note(format string, args ...any) {
	if env.quiet {
		return
	}
	fmt.Fprintf(env.prog.writer(env.stderr), "note: "+format+"\n", args...)
}

// step starts a progress step (nil-safe for commands run without main).
func (env *cliEnv) step(what string) func() {
	return env.prog.begin(what)
}

// stepNow starts a step known to be long, named at once.
func (env *cliEnv) stepNow(what string) func() {
	return env.prog.beginNow(what)
}
