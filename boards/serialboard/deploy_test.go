package serialboard_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/batteryless/harness/harness/link"
	"github.com/batteryless/harness/harness/link/linktest"
	"github.com/batteryless/harness/harness/wire"
)

// image is a stand-in plan image of n bytes.
func image(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

// oneLine fails the test if a message spans lines.
func oneLine(t *testing.T, err error) {
	t.Helper()
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("the message spans lines: %q", err)
	}
}

// TestDeploy: an image goes into the board's image area (the board holds
// exactly its bytes and says it is valid), the board starts a new series of
// inference numbers, and an inference runs on it; Identity is the last
// HELLO's.
func TestDeploy(t *testing.T) {
	linktest.LeakCheck(t)
	r := newRig(t, rigOpts{board: linktest.Config{Tasks: 6, ImageBytes: 8192}})
	if r.brd.Identity() != nil {
		t.Error("Identity before any HELLO is not nil")
	}
	ctx := ctxT(t, 30*time.Second)
	inf, err, _ := r.infer(t, ctx, 7, nil)
	r.verified(t, inf, err)
	img := image(5000) // 21 DEPLOY_CHUNKs
	if err := r.brd.Deploy(ctx, img); err != nil {
		t.Fatal(err)
	}
	if got := r.fb.Image(); !bytes.Equal(got, img) {
		t.Errorf("the board holds %d image bytes, not the %d deployed", len(got), len(img))
	}
	id := r.brd.Identity()
	if id == nil || id.Flags&wire.IdentityImageValid == 0 || id.ImageBytes != 8192 {
		t.Errorf("identity after the deploy %+v", id)
	}
	if st := r.fb.Stats(); st.Deploys != 1 || st.Inference != 0 {
		t.Errorf("board after the deploy: %d deploys, started inference %d (want 1, 0)", st.Deploys, st.Inference)
	}
	// Inference 7 again: the new image's first, so the board runs it.
	inf, err, _ = r.infer(t, ctx, 7, nil)
	r.verified(t, inf, err)
	if st := r.fb.Stats(); st.Starts != 2 {
		t.Errorf("%d STARTs executed, want 2", st.Starts)
	}
}

// TestDeployTooLarge: an image larger than the capacity IDENTITY gives is
// refused before any DEPLOY_CHUNK, in one line naming both sizes, and the
// board's image stays valid.
func TestDeployTooLarge(t *testing.T) {
	linktest.LeakCheck(t)
	r := newRig(t, rigOpts{board: linktest.Config{ImageBytes: 4096}})
	ctx := ctxT(t, 30*time.Second)
	err := r.brd.Deploy(ctx, image(4097))
	if err == nil {
		t.Fatal("an image of 4097 bytes deployed into 4096")
	}
	t.Log(err)
	oneLine(t, err)
	if !strings.Contains(err.Error(), "4097 bytes") || !strings.Contains(err.Error(), "4096 bytes") {
		t.Errorf("the message does not name both sizes: %v", err)
	}
	if st := r.fb.Stats(); st.Commands != 1 {
		t.Errorf("the board got %d commands, want the HELLO alone", st.Commands)
	}
	if id := r.brd.Identity(); id == nil || id.Flags&wire.IdentityImageValid == 0 {
		t.Errorf("identity %+v: the board's image is no longer valid", id)
	}
	if err := r.brd.Deploy(ctx, nil); err == nil {
		t.Error("an empty image deployed")
	}
}

// TestDeployReadOnly: a board whose plan is linked into its flash answers
// DEPLOY with FAILED, detail 1; the error says so and how to flash a plan
// (the script of the board's kind), and wraps the link's CommandError.
func TestDeployReadOnly(t *testing.T) {
	linktest.LeakCheck(t)
	for _, c := range []struct{ name, want, not string }{
		{"stm32f405", "scripts/flash-stm32.sh firmware/build/stm32f4/firmware.elf", "msp430"},
		{"msp430fr5994", "scripts/flash-msp430.sh firmware/build/msp430fr5994/firmware.elf", "stm32"},
		{"custom", "scripts/flash-stm32.sh", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, rigOpts{board: linktest.Config{Name: c.name, ReadOnlyImage: true}})
			ctx := ctxT(t, 30*time.Second)
			err := r.brd.Deploy(ctx, image(1000))
			if err == nil {
				t.Fatal("a read-only board took an image")
			}
			t.Log(err)
			oneLine(t, err)
			msg := err.Error()
			for _, want := range []string{"no writable image area", "linked into its flash", "FAILED, detail 1", c.want, "harness schedule --image"} {
				if !strings.Contains(msg, want) {
					t.Errorf("the message lacks %q", want)
				}
			}
			if c.not != "" && strings.Contains(msg, c.not) {
				t.Errorf("the message mentions %s for board %s", c.not, c.name)
			}
			var ce *link.CommandError
			if !errors.As(err, &ce) || ce.Status != wire.StatusFailed || ce.Detail != 1 {
				t.Errorf("the error does not wrap the ACK: %#v", ce)
			}
		})
	}
}

// TestDeployBadCRC: a board whose image area changed a byte answers
// DEPLOY_COMMIT with BAD_CRC and the CRC it computed; the error names both
// CRCs, and the board has no valid image.
func TestDeployBadCRC(t *testing.T) {
	linktest.LeakCheck(t)
	r := newRig(t, rigOpts{board: linktest.Config{ImageFault: func(area []byte) { area[100] ^= 0x10 }}})
	ctx := ctxT(t, 30*time.Second)
	img := image(2000)
	changed := bytes.Clone(img)
	changed[100] ^= 0x10
	boardCRC := wire.Checksum(changed)
	err := r.brd.Deploy(ctx, img)
	if err == nil {
		t.Fatal("a corrupted image committed")
	}
	t.Log(err)
	oneLine(t, err)
	for _, crc := range []uint32{wire.Checksum(img), boardCRC} {
		if want := fmt.Sprintf("%#08x", crc); !strings.Contains(err.Error(), want) {
			t.Errorf("the message lacks the CRC %s", want)
		}
	}
	if r.fb.Image() != nil {
		t.Error("the board says its image is valid")
	}
}
