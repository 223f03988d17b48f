package bench

import (
	"context"
	"time"

	"github.com/batteryless/harness/harness/replay"
)

// CurveInfo describes the list a curve-mode run played.
type CurveInfo struct {
	Kind      string  `json:"kind"`   // the instrument's list form: "LIST", "ARB CDW", ...
	Points    int     `json:"points"` // steps uploaded
	DwellS    float64 `json:"dwell_s,omitempty"`
	ErrorV    float64 `json:"error_v"` // the staircase's largest error against the model's curve
	DurationS float64 `json:"duration_s"`
}

// curvePlan is a compiled curve and where its edges fall.
type curvePlan struct{}

func (c *curvePlan) wallOn(b *Board, t float64) time.Time { return b.wallOf(t) }

func (c *curvePlan) offError(b *Board, t float64) float64 { return 0 }

func (b *Board) prepareCurve(ctx context.Context, cfg replay.Config) error { return nil }
