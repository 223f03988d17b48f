package sched

import (
	"math"

	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/harness/plan"
)

// Predict fills in the predicted latency of every layer and of the whole
// inference for a mean harvested power (before the converter; 0 means
// continuous power). The model: a layer takes at least its compute time;
// on harvested power it also takes its energy over the power the converter
// delivers. Without the run-time rule every power cycle begins with a
// reboot (energy and time) and gives the storage budget less the reboot,
// stretched by the share of the draw the harvest covers while the board
// runs; brown-outs empty SRAM, so every task pays its full reads. With the
// rule (or just-in-time checkpoints) the board sleeps instead of rebooting
// and keeps SRAM, so a task reads only what the task before did not leave
// there.
func Predict(p *plan.Plan, prof *profiles.Profile, meanHarvestW float64) {
	p.PredictedS, p.PredictedForW = 0, meanHarvestW
	usable := prof.CycleBudget() - prof.Reboot.Energy
	power := prof.Power.Efficiency * meanHarvestW
	if cover := power / prof.ActivePowerW; prof.ActivePowerW > 0 && cover > 0 {
		usable /= 1 - math.Min(cover, 0.9)
	}
	cycles := make(map[int]float64)
	resident := make(map[int]float64)
	for _, t := range p.Tasks {
		cycles[t.Layer] += t.Cycles
		resident[t.Layer] += t.Energy - t.ReadEnergy + t.ResidentReadEnergy
	}
	for i := range p.Layers {
		lp := &p.Layers[i]
		compute := prof.Seconds(cycles[lp.Layer])
		energy := lp.Energy
		if p.ReadsSupply() {
			energy = resident[lp.Layer]
		} else if usable > 0 {
			reboots := math.Ceil(lp.Energy / usable)
			energy += reboots * prof.Reboot.Energy
			compute += reboots * prof.Reboot.Seconds
		}
		lp.PredictedS = compute
		if power > 0 {
			lp.PredictedS = math.Max(compute, energy/power)
		}
		p.PredictedS += lp.PredictedS
	}
}
