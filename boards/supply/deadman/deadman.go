// Package deadman switches a supply's output off when the run that drives
// it dies: a small process, started with the run, that holds one end of a
// pipe. A run that ends in order disarms it first; a run killed (SIGKILL,
// a crash, the machine's OOM killer) closes the pipe by dying, and the
// deadman switches the output off over a connection of its own
// (supply.SwitchOff), within a second.
//
// The deadman is this program run again: Start executes os.Executable()
// with the supply's URL in its environment, in a process group of its own
// (a signal to the run's group, Ctrl-C included, does not reach it). A
// program that starts deadmen calls Main first thing in main (and a test
// binary in TestMain): in the deadman's process it runs the deadman and
// exits; elsewhere it returns at once.
package deadman

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/batteryless/harness/boards/supply"
)

// EnvURL is the environment variable that makes a process a deadman, and
// names the supply URL it switches off.
const EnvURL = "HARNESS_DEADMAN_URL"

// disarm is the line a run writes to say the output is off.
const disarm = "disarm"

// Patience is how long a deadman tries to switch the output off (the
// instrument may still hold the dead run's connection for a moment).
const Patience = 5 * time.Second

// Deadman is a started deadman process.
type Deadman struct {
	cmd  *exec.Cmd
	w    io.WriteCloser
	done chan error
}

// Start starts a deadman for the supply at url. The program must call Main.
func Start(url string) (*Deadman, error) {
	if _, err := supply.ParseURL(url); err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("deadman: %w", err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), EnvURL+"="+url)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	w, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("deadman: %w", err)
	}
	// The deadman says it is ready (its signals ignored, its pipe read)
	// on a second pipe: before that, a death of this run might go unseen.
	rd, wr, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("deadman: %w", err)
	}
	defer rd.Close()
	cmd.ExtraFiles = []*os.File{wr}
	if err := cmd.Start(); err != nil {
		wr.Close()
		return nil, fmt.Errorf("deadman: starting %s: %w", exe, err)
	}
	wr.Close()
	d := &Deadman{cmd: cmd, w: w, done: make(chan error, 1)}
	go func() { d.done <- cmd.Wait() }()
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(rd).ReadString('\n')
		if err == nil && strings.TrimSpace(line) != "ready" {
			err = fmt.Errorf("said %q", line)
		}
		ready <- err
	}()
	select {
	case err := <-ready:
		if err != nil {
			d.kill()
			return nil, fmt.Errorf("deadman: %s did not start as a deadman (does it call deadman.Main?): %w", exe, err)
		}
	case <-time.After(10 * time.Second):
		d.kill()
		return nil, fmt.Errorf("deadman: %s did not say it was ready within 10 s", exe)
	}
	return d, nil
}

func (d *Deadman) kill() {
	d.w.Close()
	d.cmd.Process.Kill()
	<-d.done
}

// PID is the deadman's process id.
func (d *Deadman) PID() int { return d.cmd.Process.Pid }

// Disarm tells the deadman the output is off: it exits without a word to
// the supply.
func (d *Deadman) Disarm() error {
	_, err := io.WriteString(d.w, disarm+"\n")
	return err
}

// Close closes the pipe (a deadman not disarmed then switches the output
// off) and waits for the deadman to exit.
func (d *Deadman) Close() error {
	d.w.Close()
	select {
	case err := <-d.done:
		if err != nil {
			return fmt.Errorf("deadman: %w", err)
		}
		return nil
	case <-time.After(Patience + 2*time.Second):
		d.cmd.Process.Kill()
		return errors.New("deadman: did not exit")
	}
}

// Main runs the deadman and exits when this process is one (EnvURL is
// set); otherwise it returns at once.
func Main() {
	url, ok := os.LookupEnv(EnvURL)
	if !ok {
		return
	}
	os.Exit(run(url, os.Stdin, os.NewFile(3, "ready")))
}

// run waits for the run's pipe to end and switches the output off unless
// the run disarmed it; the exit code says whether it succeeded.
func run(url string, in io.Reader, ready io.WriteCloser) int {
	// The run's signals are not the deadman's: it outlives the run.
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE)
	if ready != nil {
		io.WriteString(ready, "ready\n")
		ready.Close()
	}
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == disarm {
			return 0
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	var err error
	for ctx.Err() == nil {
		if err = supply.SwitchOff(ctx, url, supply.Options{Timeout: time.Second}); err == nil {
			fmt.Fprintf(os.Stderr, "harness deadman: the run died; the output of %s is off\n", url)
			return 0
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	fmt.Fprintf(os.Stderr, "harness deadman: the run died and the output of %s could not be switched off: %v\n", url, err)
	return 1
}
