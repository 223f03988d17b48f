package plan

// The run-time rule (Plan.RuntimeRule), defined once: boards/sim's Board
// decides with these functions, and the plan image carries their values for
// the firmware (EncodeImage), so that both decide alike.

// RuleRunAnyway is the share of a full charge (Plan.Budget) above which a
// task runs without the rule's check: sleeping until the turn-on voltage
// would not give it more than it has then.
const RuleRunAnyway = 0.95

// Storage is the board's energy storage as a rule on the board sees it when
// it reads its supply voltage: the capacitance and the turn-on and
// brown-out thresholds. The energy above brown-out at V volts is
// CapacitanceF * (V^2 - VoffV^2) / 2.
type Storage struct {
	CapacitanceF float64 `json:"capacitance_f"`
	VonV         float64 `json:"von_v"`
	VoffV        float64 `json:"voff_v"`
}

// RuleNeed is the energy above brown-out the run-time rule asks for before
// it starts task i: the task (with its own commit, when it commits), the
// supply reading, and, when the task does not commit, one commit (the early
// commit the rule must still be able to make after it).
func (p *Plan) RuleNeed(i int) float64 {
	t := &p.Tasks[i]
	need := t.Energy + p.SenseEnergy
	if !t.Commit {
		need += p.Tasks[len(p.Tasks)-1].CommitEnergy
	}
	return need
}

// RuleLimit is the need above which a task runs anyway (RuleRunAnyway of a
// full charge).
func (p *Plan) RuleLimit() float64 { return RuleRunAnyway * p.Budget }
