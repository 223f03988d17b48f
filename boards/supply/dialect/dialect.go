// Package dialect holds the SCPI supply drivers, one per instrument family
// (a dialect), and registers the "tcp" and "serial" URL schemes with
// package supply: the URL's instrument answers *IDN?, the dialect is the
// one whose Match accepts the identity (or the one ?dialect= names; an
// identity no dialect knows is refused), and the channel is ?channel=
// (default 1).
//
// Each dialect states its instrument's capabilities from its programming
// guide (Capabilities), and the channel it returns implements exactly the
// optional interfaces of package supply those capabilities promise.
//
// One connection per instrument: channels of the same address share one
// scpi.Client, released when the last is closed.
package dialect

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"periph.io/x/conn/v3/physic"

	"github.com/batteryless/harness/boards/supply"
	"github.com/batteryless/harness/boards/supply/scpi"
)

// Dialect is one instrument family's driver.
type Dialect struct {
	Name string // e.g. "keysight-n67"
	// Family is what the dialect covers, for help: "Keysight N67xx (N6705C, N6700C)".
	Family string
	// Match accepts the identities (answers to *IDN?) of the family.
	Match func(id scpi.Identity) bool
	// Port is the instrument's usual raw socket port.
	Port int
	// Client adjusts the connection: MinInterval, SyncQuery and
	// SyncAnswer (the rest is the caller's).
	Client scpi.Options
	// Capabilities are the model's, for a channel (an error for a channel
	// the model does not have).
	Capabilities func(id scpi.Identity, channel int) (supply.Capabilities, error)
	// New makes the channel's driver.
	New func(b *Base) supply.Channel
}

var (
	regMu    sync.Mutex
	dialects []Dialect
)

// Register adds a dialect; a name registered twice is an error.
func Register(d Dialect) error {
	regMu.Lock()
	defer regMu.Unlock()
	if d.Name == "" || d.Match == nil || d.Capabilities == nil || d.New == nil {
		return fmt.Errorf("dialect: Register %q: Name, Match, Capabilities and New are required", d.Name)
	}
	for _, x := range dialects {
		if x.Name == d.Name {
			return fmt.Errorf("dialect: %q registered twice", d.Name)
		}
	}
	dialects = append(dialects, d)
	return nil
}

// All returns the registered dialects, by name.
func All() []Dialect {
	regMu.Lock()
	defer regMu.Unlock()
	out := slices.Clone(dialects)
	slices.SortFunc(out, func(a, b Dialect) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Names lists the dialects' names.
func Names() []string {
	var out []string
	for _, d := range All() {
		out = append(out, d.Name)
	}
	return out
}

// Lookup finds a dialect by name.
func Lookup(name string) (Dialect, bool) {
	for _, d := range All() {
		if d.Name == name {
			return d, true
		}
	}
	return Dialect{}, false
}

// Detect picks the dialect of an identity.
func Detect(id scpi.Identity) (Dialect, error) {
	for _, d := range All() {
		if d.Match(id) {
			return d, nil
		}
	}
	return Dialect{}, fmt.Errorf("no dialect knows %q %q (known: %s); if it speaks one of them, say which with ?dialect=", id.Manufacturer, id.Model, strings.Join(Names(), ", "))
}

// Base is what every dialect's channel shares: the connection, the
// identity, the channel number and its capabilities.
type Base struct {
	C    *scpi.Client
	ID   scpi.Identity
	Ch   int
	Caps supply.Capabilities

	release func() error
}

// String names the channel.
func (b *Base) String() string {
	return fmt.Sprintf("%s ch%d (%s %s)", b.C, b.Ch, b.ID.Manufacturer, b.ID.Model)
}

// Capabilities are the channel's.
func (b *Base) Capabilities() supply.Capabilities { return b.Caps }

// Identity is the instrument's answer to *IDN?.
func (b *Base) Identity() scpi.Identity { return b.ID }

// Check drains the error queue (supply.Checker).
func (b *Base) Check(ctx context.Context, where string) error { return b.C.Checkpoint(ctx, where) }

// Close releases the connection.
func (b *Base) Close() error {
	if b.release == nil {
		return nil
	}
	r := b.release
	b.release = nil
	return r()
}

// Client returns the channel's SCPI client, for tools that talk to the
// instrument directly.
func (b *Base) Client() *scpi.Client { return b.C }

// V formats a voltage for a command: volts, up to 6 significant digits.
func V(v physic.ElectricPotential) string { return strconv.FormatFloat(supply.Volts(v), 'g', 6, 64) }

// A formats a current for a command: amperes, up to 6 significant digits.
func A(i physic.ElectricCurrent) string { return strconv.FormatFloat(supply.Amps(i), 'g', 6, 64) }

// ---------------------------------------------------------------------------
// Opening.

type shared struct {
	c    *scpi.Client
	id   scpi.Identity
	refs int
}

var (
	poolMu sync.Mutex
	pool   = map[string]*shared{}
)

// acquire returns the instrument's client (one per address), dialling it
// and asking *IDN? the first time.
func acquire(ctx context.Context, tr scpi.Transport, opt scpi.Options) (*shared, func() error, error) {
	key := tr.String()
	poolMu.Lock()
	defer poolMu.Unlock()
	s := pool[key]
	if s == nil {
		c, err := scpi.Dial(ctx, tr, opt)
		if err != nil {
			return nil, nil, err
		}
		ans, err := c.Query(ctx, "*IDN?")
		if err != nil {
			c.Close()
			return nil, nil, fmt.Errorf("identity: %w", err)
		}
		id, err := scpi.ParseIdentity(ans)
		if err != nil {
			c.Close()
			return nil, nil, err
		}
		s = &shared{c: c, id: id}
		pool[key] = s
	}
	s.refs++
	var once sync.Once
	release := func() error {
		var err error
		once.Do(func() {
			poolMu.Lock()
			defer poolMu.Unlock()
			s.refs--
			if s.refs == 0 {
				delete(pool, key)
				err = s.c.Close()
			}
		})
		return err
	}
	return s, release, nil
}

// OpenSCPI opens a channel of a SCPI instrument over tr: the dialect is
// name's ("" : detected from *IDN?).
func OpenSCPI(ctx context.Context, tr scpi.Transport, name string, channel int, opt supply.Options) (supply.Channel, error) {
	var d Dialect
	if name != "" {
		var ok bool
		if d, ok = Lookup(name); !ok {
			return nil, fmt.Errorf("dialect %q unknown (known: %s)", name, strings.Join(Names(), ", "))
		}
	}
	copt := scpi.Options{Timeout: opt.Timeout, Transcript: opt.Transcript}
	if name != "" {
		copt.MinInterval, copt.SyncQuery, copt.SyncAnswer = d.Client.MinInterval, d.Client.SyncQuery, d.Client.SyncAnswer
	} else {
		// Until the dialect is known, go at the pace of the slowest.
		copt.MinInterval = slowest()
	}
	s, release, err := acquire(ctx, tr, copt)
	if err != nil {
		return nil, err
	}
	if name == "" {
		if d, err = Detect(s.id); err != nil {
			release()
			return nil, err
		}
	}
	s.c.Adjust(d.Client.MinInterval, d.Client.SyncQuery, d.Client.SyncAnswer)
	caps, err := d.Capabilities(s.id, channel)
	if err != nil {
		release()
		return nil, err
	}
	caps.Dialect = d.Name
	return d.New(&Base{C: s.c, ID: s.id, Ch: channel, Caps: caps, release: release}), nil
}

func slowest() (d0 time.Duration) {
	for _, d := range All() {
		d0 = max(d0, d.Client.MinInterval)
	}
	return d0
}

func init() {
	mustRegister(supply.Driver{Scheme: "tcp", Usage: "tcp://HOST:PORT[?dialect=D&channel=N]", Open: openTCP})
	mustRegister(supply.Driver{Scheme: "serial", Usage: "serial:///dev/ttyUSB0?baud=9600[&dialect=D&channel=N]", Open: openSerial})
}

func mustRegister(d supply.Driver) {
	if err := supply.Register(d); err != nil {
		panic(err)
	}
}

// query reads ?dialect= and ?channel=, refusing any other key.
func query(u *url.URL, allowed ...string) (string, int, url.Values, error) {
	q := u.Query()
	for k := range q {
		if k != "dialect" && k != "channel" && !slices.Contains(allowed, k) {
			return "", 0, nil, fmt.Errorf("unknown URL parameter %q (known: dialect, channel%s)", k, prefixAll(allowed))
		}
	}
	ch := 1
	if s := q.Get("channel"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 64 {
			return "", 0, nil, fmt.Errorf("?channel=%q: want a channel number from 1", s)
		}
		ch = n
	}
	return q.Get("dialect"), ch, q, nil
}

func prefixAll(s []string) string {
	var b strings.Builder
	for _, x := range s {
		b.WriteString(", " + x)
	}
	return b.String()
}

func openTCP(ctx context.Context, u *url.URL, opt supply.Options) (supply.Channel, error) {
	name, ch, _, err := query(u)
	if err != nil {
		return nil, err
	}
	if u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("want tcp://HOST:PORT")
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = strconv.Itoa(scpi.DefaultPort)
		if d, ok := Lookup(name); ok && d.Port != 0 {
			port = strconv.Itoa(d.Port)
		}
	}
	return OpenSCPI(ctx, scpi.TCP{Addr: net.JoinHostPort(host, port)}, name, ch, opt)
}

func openSerial(ctx context.Context, u *url.URL, opt supply.Options) (supply.Channel, error) {
	name, ch, q, err := query(u, "baud")
	if err != nil {
		return nil, err
	}
	if u.Host != "" || u.Path == "" {
		return nil, fmt.Errorf("want serial:///dev/ttyUSB0 (an absolute path after serial://)")
	}
	baud := 9600
	if s := q.Get("baud"); s != "" {
		if baud, err = strconv.Atoi(s); err != nil || baud < 50 || baud > 4000000 {
			return nil, fmt.Errorf("?baud=%q: want a baud rate", s)
		}
	}
	return OpenSCPI(ctx, scpi.Serial{Path: u.Path, Baud: baud}, name, ch, opt)
}
