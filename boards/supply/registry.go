package supply

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/batteryless/harness/boards/supply/scpi"
)

// Options are what Open passes to a driver besides the URL.
type Options struct {
	// Transcript records every command and answer (--supply-log); nil:
	// none.
	Transcript *scpi.Transcript
	// Timeout bounds each instrument call (0: the driver's default).
	Timeout time.Duration
}

// Driver opens channels for one URL scheme.
type Driver struct {
	Scheme string // "tcp", "serial", "periph"
	// Usage is the URL form, for help and errors.
	Usage string
	Open  func(ctx context.Context, u *url.URL, opt Options) (Channel, error)
}

var (
	regMu   sync.Mutex
	drivers = map[string]Driver{}
)

// Register adds a driver; a scheme registered twice is an error.
func Register(d Driver) error {
	regMu.Lock()
	defer regMu.Unlock()
	if d.Scheme == "" || d.Open == nil {
		return errors.New("supply: Register: a driver needs a scheme and Open")
	}
	if _, dup := drivers[d.Scheme]; dup {
		return fmt.Errorf("supply: Register: scheme %q registered twice", d.Scheme)
	}
	drivers[d.Scheme] = d
	return nil
}

// All returns the registered drivers, by scheme.
func All() []Driver {
	regMu.Lock()
	defer regMu.Unlock()
	out := make([]Driver, 0, len(drivers))
	for _, d := range drivers {
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b Driver) int { return strings.Compare(a.Scheme, b.Scheme) })
	return out
}

// Open opens the channel a URL names, with the driver of its scheme.
func Open(ctx context.Context, rawURL string, opt Options) (Channel, error) {
	u, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	regMu.Lock()
	d, ok := drivers[u.Scheme]
	regMu.Unlock()
	if !ok {
		var forms []string
		for _, d := range All() {
			forms = append(forms, d.Usage)
		}
		return nil, fmt.Errorf("supply %s: no driver for %q URLs (known: %s)", rawURL, u.Scheme, strings.Join(forms, ", "))
	}
	ch, err := d.Open(ctx, u, opt)
	if err != nil {
		return nil, fmt.Errorf("supply %s: %w", rawURL, err)
	}
	return ch, nil
}

// ParseURL parses a supply URL and checks its form: a scheme, no user
// information, at most 2 KiB.
func ParseURL(rawURL string) (*url.URL, error) {
	if len(rawURL) > 2048 {
		return nil, fmt.Errorf("supply URL of %d bytes: too long", len(rawURL))
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("supply URL %q: %w", rawURL, err)
	}
	if u.Scheme == "" {
		return nil, fmt.Errorf("supply URL %q: no scheme (tcp://HOST:PORT, serial:///dev/ttyUSB0, periph://?enable=...)", rawURL)
	}
	if u.User != nil {
		return nil, fmt.Errorf("supply URL %q: user information is not used", rawURL)
	}
	return u, nil
}

// SwitchOff opens the URL's channel over a connection of its own, switches
// its output off and closes it: what a watchdog process does when the run
// that owned the supply dies.
func SwitchOff(ctx context.Context, rawURL string, opt Options) error {
	ch, err := Open(ctx, rawURL, opt)
	if err != nil {
		return err
	}
	defer ch.Close()
	if err := ch.SetOutput(ctx, false); err != nil {
		return fmt.Errorf("supply %s: output off: %w", rawURL, err)
	}
	return nil
}
