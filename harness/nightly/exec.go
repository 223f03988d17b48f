package nightly

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// child is how one `harness replay` process ended.
type child struct {
	Exit     int  // the exit code; -1 when a signal ended it
	TimedOut bool // the runner killed it at its timeout
	Canceled bool // the runner killed it because the run was interrupted
	Signal   string
	Stdout   []byte // its JSON result (bounded)
	Stderr   []byte // the end of its error output (bounded)
	Seconds  float64
	StartErr error // it could not be started
}

// killGrace is how long a child has to stop after SIGTERM (QEMU closed,
// log ended) before its process group is killed.
const killGrace = 5 * time.Second

// maxStdout bounds what is read back of a child's stdout (a replay's JSON
// is kilobytes; the file keeps everything).
const maxStdout = 16 << 20

// runChild runs bin with args in its own process group, stdout to
// dir/stdout.json and stderr to dir/stderr.txt. At timeout, or when ctx
// ends, the group gets SIGTERM, then SIGKILL after killGrace; after the
// child exits, whatever it left in its group (a QEMU) is killed too. The
// child dies with the runner (Pdeathsig): a runner killed by SIGKILL
// leaves no replay behind.
func runChild(ctx context.Context, bin string, args []string, dir string, timeout time.Duration) child {
	var res child
	out, err := os.Create(filepath.Join(dir, "stdout.json"))
	if err != nil {
		res.StartErr = err
		return res
	}
	defer out.Close()
	errf, err := os.Create(filepath.Join(dir, "stderr.txt"))
	if err != nil {
		res.StartErr = err
		return res
	}
	defer errf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout = out
	cmd.Stderr = errf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		res.StartErr = err
		return res
	}
	pgid := cmd.Process.Pid
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var waitErr error
	select {
	case waitErr = <-done:
	case <-timer.C:
		res.TimedOut = true
		waitErr = stopGroup(pgid, done)
	case <-ctx.Done():
		res.Canceled = true
		waitErr = stopGroup(pgid, done)
	}
	// Whatever the child started in its group goes with it.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	res.Seconds = time.Since(start).Seconds()
	res.Exit = 0
	if waitErr != nil {
		var ee *exec.ExitError
		if !errors.As(waitErr, &ee) {
			res.StartErr = waitErr
			return res
		}
		res.Exit = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			res.Exit = -1
			res.Signal = ws.Signal().String()
		}
	}
	res.Stdout, _ = readHead(filepath.Join(dir, "stdout.json"), maxStdout)
	res.Stderr, _ = readTail(filepath.Join(dir, "stderr.txt"), 8<<10)
	return res
}

// stopGroup asks the process group to stop, then kills it.
func stopGroup(pgid int, done <-chan error) error {
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case err := <-done:
		return err
	case <-time.After(killGrace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		return <-done
	}
}

func readHead(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit))
}

// readTail returns up to the last n bytes of a file.
func readTail(path string, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	off := max(st.Size()-n, 0)
	b := make([]byte, st.Size()-off)
	_, err = f.ReadAt(b, off)
	if err != nil && err != io.EOF {
		return nil, err
	}
	return b, nil
}

// lastLines returns the last n non-empty lines of b, each cut to 300
// bytes.
func lastLines(b []byte, n int) []string {
	var out []string
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	for i := len(lines) - 1; i >= 0 && len(out) < n; i-- {
		l := strings.TrimSpace(string(lines[i]))
		if l == "" {
			continue
		}
		if len(l) > 300 {
			l = l[:300] + "..."
		}
		out = append(out, l)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// replayArgs are the flags of `harness replay` for a board.
func boardArgs(b *Board) []string {
	args := []string{"--board", b.Kind}
	if b.Profile != "" {
		args = append(args, "--profile", b.Profile)
	}
	if b.ELF != "" {
		args = append(args, "--elf", b.ELF)
	}
	if b.Port != "" {
		args = append(args, "--port", b.Port)
	}
	if b.Supply != "" {
		args = append(args, "--supply", b.Supply)
	}
	return append(args, b.Args...)
}

// cellArgs is the command line of one cell's replay.
func cellArgs(c *Cell, b *Board, m *Model, logPath string) []string {
	args := []string{"replay", c.TraceArg}
	args = append(args, boardArgs(b)...)
	if m != nil && m.Path != "" {
		args = append(args, "--model", m.Path)
	}
	if m != nil && m.Input != "" {
		args = append(args, "--input", m.Input)
	}
	args = append(args, "--scheduler", c.Scheduler, "--inferences", strconv.Itoa(c.Inferences))
	if c.Loop {
		args = append(args, "--loop")
	}
	return append(args, "--json", "--log", logPath)
}

// healthArgs is a board's health check: one inference of the bundled
// model on the bundled trace, looped, with the baseline scheduler.
func healthArgs(b *Board, logPath string) []string {
	args := append([]string{"replay"}, boardArgs(b)...)
	return append(args, "--scheduler", "tile", "--inferences", "1", "--loop", "--json", "--log", logPath)
}

// describeExit says how a child ended, for messages.
func describeExit(x child) string {
	switch {
	case x.StartErr != nil:
		return fmt.Sprintf("could not run: %v", x.StartErr)
	case x.TimedOut:
		return "killed at its timeout"
	case x.Canceled:
		return "interrupted"
	case x.Exit < 0:
		return "killed by " + x.Signal
	}
	return "exit " + strconv.Itoa(x.Exit)
}
