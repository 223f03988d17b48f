package scpi

import (
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"
)

// Transcript writes every command, answer and connection event of one or
// more clients, one line each, for the bench log (--supply-log):
//
//	2026-11-27T10:15:02.123456Z tcp://10.0.0.5:5025 > VOLT 3.3,(@1)
//	2026-11-27T10:15:02.131002Z tcp://10.0.0.5:5025 < +3.30000E+00
//	2026-11-27T10:15:04.131502Z tcp://10.0.0.5:5025 ! no answer to "MEAS:CURR? (@1)" in 2s
//
// ">" is a command sent, "<" an answer, "!" an error, "~" a connection
// event. Text that is not printable ASCII is quoted; a block is written as
// its length.
type Transcript struct {
	mu  sync.Mutex
	w   io.Writer
	err error
	now func() time.Time
}

// NewTranscript writes to w (nil: a transcript that writes nothing).
func NewTranscript(w io.Writer) *Transcript {
	return &Transcript{w: w, now: time.Now}
}

// Err is the first error writing the transcript (the run goes on without
// it).
func (t *Transcript) Err() error {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

// Log writes one line: who (the instrument), the direction mark and text.
func (t *Transcript) Log(who string, mark byte, text string) {
	if t == nil || t.w == nil {
		return
	}
	if !printable(text) {
		text = strconv.Quote(text)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err != nil {
		return
	}
	_, t.err = fmt.Fprintf(t.w, "%s %s %c %s\n", t.now().UTC().Format("2006-01-02T15:04:05.000000Z"), who, mark, text)
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
