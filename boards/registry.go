package boards

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/harness/plan"
)

// Capability is something a kind of board can do beyond the Board contract.
type Capability string

// The capabilities a driver may declare.
const (
	// CapReplay: replays a trace under the engine's power model.
	CapReplay Capability = "replay"
	// CapBench: runs inferences on steady bench power.
	CapBench Capability = "bench"
	// CapInject: brown-outs forced at task boundaries and inside tasks.
	CapInject Capability = "inject"
	// CapSenseSupply: its firmware reads the supply voltage, so plans with
	// the run-time rule (adaptive) run on it.
	CapSenseSupply Capability = "sense-supply"
	// CapDeploy: a plan image is written to it over the line.
	CapDeploy Capability = "deploy"
	// CapCalibrate: microbenchmarks of its kernels run on it.
	CapCalibrate Capability = "calibrate"
	// CapMeasuredCycles: it reports each task's cycles as it ran them.
	CapMeasuredCycles Capability = "measured-cycles"
)

// Info describes a kind of board.
type Info struct {
	Name         string       `json:"name"`
	Description  string       `json:"description"`
	Capabilities []Capability `json:"capabilities"`
	// DefaultProfile is the device profile a run on it uses unless told.
	DefaultProfile string `json:"default_profile"`
	// Needs lists the options it cannot open without (e.g. "port").
	Needs []string `json:"needs,omitempty"`
}

// Has reports whether the kind of board has capability c.
func (i Info) Has(c Capability) bool {
	for _, x := range i.Capabilities {
		if x == c {
			return true
		}
	}
	return false
}

// Deployment is what a board runs: a model's plan on a device profile.
type Deployment struct {
	Model   *model.Model
	Plan    *plan.Plan
	Profile *profiles.Profile
	// Image is the plan's binary image (plan.EncodeImage), for boards
	// that load one.
	Image []byte
	// Input is the inference's input and Want the reference executor's
	// output for it (a board may check itself with a warm-up).
	Input, Want []byte
}

// Options are the settings of the drivers; each reads those it knows.
type Options struct {
	// ELF is the emulated STM32's firmware built without a plan.
	ELF string
	// Port is a serial board's port, Baud its rate (0: the link's default).
	Port string
	Baud int
	// Supply is the URL of a serial board's programmable supply (its power
	// strategy on a bench: boards/supply), Power the way it gives the power
	// (gate, curve, harvester) and OffTime how long it stays off (min, real).
	Supply, Power, OffTime string
	// Extra holds a driver's own further settings (boards/bench.Options for
	// the serial board on a bench); nil: its defaults.
	Extra any
	// Logf, if set, receives one line per decision and board event.
	Logf func(format string, args ...any)
}

// Driver opens boards of one kind.
type Driver interface {
	Info() Info
	Open(ctx context.Context, d Deployment, o Options) (Board, error)
}

var (
	mu      sync.Mutex
	drivers = map[string]Driver{}
)

// Register makes a driver available by its name. It panics when the name is
// taken, as a program that registers two drivers by one name is wrong.
func Register(d Driver) {
	mu.Lock()
	defer mu.Unlock()
	name := d.Info().Name
	if _, dup := drivers[name]; dup {
		panic("boards: driver " + name + " registered twice")
	}
	drivers[name] = d
}

// Lookup returns the driver of a kind of board.
func Lookup(name string) (Driver, error) {
	mu.Lock()
	defer mu.Unlock()
	if d, ok := drivers[name]; ok {
		return d, nil
	}
	return nil, fmt.Errorf("board %q: no such kind of board (known: %s)", name, strings.Join(namesLocked(), ", "))
}

// Open opens a board of kind name.
func Open(ctx context.Context, name string, d Deployment, o Options) (Board, error) {
	drv, err := Lookup(name)
	if err != nil {
		return nil, err
	}
	return drv.Open(ctx, d, o)
}

// All returns the registered drivers' descriptions, by name.
func All() []Info {
	mu.Lock()
	defer mu.Unlock()
	var out []Info
	for _, n := range namesLocked() {
		out = append(out, drivers[n].Info())
	}
	return out
}

// Names returns the registered kinds of board, sorted.
func Names() []string {
	mu.Lock()
	defer mu.Unlock()
	return namesLocked()
}

func namesLocked() []string {
	names := make([]string, 0, len(drivers))
	for n := range drivers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Injector is a driver that runs one inference on a fresh board of its kind
// with brown-outs forced where the commit protocol is most fragile, and
// checks the output against d.Want (the simulated board computes it when
// d.Want is nil).
type Injector interface {
	Inject(ctx context.Context, d Deployment, o Options, in InjectOptions) (*InjectResult, error)
}

// InjectOptions say where the forced brown-outs strike.
type InjectOptions struct {
	// Boundaries: after every task (before the next starts).
	Boundaries bool
	// Fraction: inside every task, after this fraction of its duration
	// (boards that cut by time); 0 or less: none.
	Fraction float64
	// Random: this many more at seeded random points inside tasks.
	Random int
	Seed   uint64
}

// InjectResult is the outcome of a fault-injection run.
type InjectResult struct {
	Board      string `json:"board"`
	Scheduler  string `json:"scheduler"`
	Tasks      int    `json:"tasks"`
	BrownOuts  int    `json:"brownouts"`
	Boundaries int    `json:"boundary_brownouts"`
	// Inside counts the brown-outs that struck inside a task.
	Inside     int  `json:"inside_brownouts"`
	Reexecuted int  `json:"reexecuted_tasks"`
	Boots      int  `json:"boots,omitempty"`
	Sleeps     int  `json:"sleeps,omitempty"`   // the run-time rule's or jit's, under a supply droop
	Attempts   int  `json:"attempts,omitempty"` // injected runs made (a board cutting by time may need more than one)
	Verified   bool `json:"verified"`
	// Mismatches counts the output values that differ from the reference.
	Mismatches int    `json:"mismatches"`
	Detail     string `json:"detail,omitempty"`
}
