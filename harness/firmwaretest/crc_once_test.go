package firmwaretest

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batteryless/harness/harness/bundled"
	"github.com/batteryless/harness/harness/plan"
)

// TestImageCRCCheckedOnce: the runtime checks an image's CRC-32 at the
// first boot after the image changes and records it in the NVM header
// (plan.VerifiedCRCOffset); while that record matches the image's CRC field
// the boots skip the check. Shown with an image whose last constant byte is
// flipped (its CRC field left as it was): refused on an erased NVM, run on
// the NVM of a board that verified the intact image; another image is
// checked again (its CRC field differs), and so refused when corrupted.
func TestImageCRCCheckedOnce(t *testing.T) {
	runplan := bin(t, "runplan")
	m := bundledModel(t)
	d := deploy(t, m, bundled.Input(), "tile")
	dir := t.TempDir()
	nvm := filepath.Join(dir, "nvm.bin")
	if r := run(t, runplan, d.image, d.input, "--brownouts-at-tasks", "--nvm-out", nvm); r.code != 0 {
		t.Fatalf("intact image: exit %d\n%s", r.code, r.stderr)
	}
	saved, err := os.ReadFile(nvm)
	if err != nil {
		t.Fatal(err)
	}
	if got := saved[plan.VerifiedCRCOffset : plan.VerifiedCRCOffset+4]; !bytes.Equal(got, d.imageBytes[12:16]) {
		t.Fatalf("NVM verified-CRC word %x, want the image's CRC field %x", got, d.imageBytes[12:16])
	}
	corrupt := func(img []byte, name string) string {
		b := append([]byte(nil), img...)
		b[len(b)-1] ^= 0x40
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bad := corrupt(d.imageBytes, "bad.img")
	if r := run(t, runplan, bad, d.input); r.code != 2 || !strings.Contains(r.stderr, "CRC-32 mismatch") {
		t.Errorf("corrupted image on an erased NVM: exit %d, want 2 and a CRC-32 mismatch\n%s", r.code, r.stderr)
	}
	// 200 brown-outs: every boot after them skips the check too.
	if r := run(t, runplan, bad, d.input, "--nvm-in", nvm, "--random-brownouts", "200", "--seed", "3"); r.code != 0 {
		t.Errorf("corrupted image on the NVM that verified the intact one: exit %d, want 0 (the check skipped)\n%s", r.code, r.stderr)
	}
	// Another image (another plan): its CRC field differs, so it is checked.
	other := deploy(t, m, bundled.Input(), "layer")
	if bytes.Equal(other.imageBytes[12:16], d.imageBytes[12:16]) {
		t.Fatal("two plans' images with the same CRC")
	}
	if r := run(t, runplan, corrupt(other.imageBytes, "other-bad.img"), d.input, "--nvm-in", nvm); r.code != 2 || !strings.Contains(r.stderr, "CRC-32 mismatch") {
		t.Errorf("another corrupted image on the NVM of the first: exit %d, want 2 and a CRC-32 mismatch\n%s", r.code, r.stderr)
	}
	if r := run(t, runplan, other.image, other.input, "--nvm-in", nvm, "--nvm-out", nvm); r.code != 0 || strings.TrimSpace(r.stdout) != other.want {
		t.Errorf("another intact image on the NVM of the first: exit %d, output %q, want %q\n%s", r.code, strings.TrimSpace(r.stdout), other.want, r.stderr)
	}
	if saved, err = os.ReadFile(nvm); err != nil {
		t.Fatal(err)
	}
	if got := saved[plan.VerifiedCRCOffset : plan.VerifiedCRCOffset+4]; !bytes.Equal(got, other.imageBytes[12:16]) {
		t.Errorf("after the other image: NVM verified-CRC word %x, want its CRC field %x", got, other.imageBytes[12:16])
	}
}
