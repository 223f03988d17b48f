package wire

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// oldBoot is a BOOT frame from firmware before the cycles field: a 10-byte
// payload (boots 3, resume 7, POWER_ON, flags NVM_VALID|IMAGE_VALID).
func oldBoot(t *testing.T) []byte {
	t.Helper()
	f, err := MarshalRaw(Header{Version: Version, Type: TypeBoot, Seq: 0}, []byte{3, 0, 0, 0, 7, 0, 0, 0, BootPowerOn, BootNVMValid | BootImageValid})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// A 10-byte BOOT payload still decodes, with Cycles 0; the new one carries
// its cycles at payload offset 10 (frame offset 14); bytes after the known
// fields are ignored.
func TestBootCycles(t *testing.T) {
	_, m, err := Unmarshal(oldBoot(t))
	if err != nil {
		t.Fatalf("old BOOT: %v", err)
	}
	if b := m.(*Boot); *b != (Boot{Boots: 3, Resume: 7, Reason: BootPowerOn, Flags: BootNVMValid | BootImageValid}) {
		t.Errorf("old BOOT decodes to %+v", *b)
	}
	f, err := Marshal(0, &Boot{Boots: 1, Cycles: 0x01020304})
	if err != nil {
		t.Fatal(err)
	}
	if len(f) != HeaderLen+14+4 || !bytes.Equal(f[14:18], []byte{4, 3, 2, 1}) {
		t.Errorf("BOOT frame %x: want 14 payload bytes, cycles little-endian at offset 14", f)
	}
	longer, _ := MarshalRaw(Header{Version: Version, Type: TypeBoot}, append(f[HeaderLen:len(f)-4:len(f)-4], 0xAA, 0xBB))
	if _, m, err := Unmarshal(longer); err != nil || m.(*Boot).Cycles != 0x01020304 {
		t.Errorf("a longer BOOT: %v %+v", err, m)
	}
	short, _ := MarshalRaw(Header{Version: Version, Type: TypeBoot}, f[HeaderLen:HeaderLen+9])
	if _, _, err := Unmarshal(short); err == nil {
		t.Error("a 9-byte BOOT payload decoded")
	}
}

// The C side (wire.c, through wirecheck --pipe) reads the old BOOT with
// cycles=0 too, and writes the new layout.
func TestWirecheckOldBoot(t *testing.T) {
	bin := buildWirecheck(t)
	cmd := exec.Command(bin, "--pipe")
	cmd.Stdin = bytes.NewReader(AppendWire(nil, oldBoot(t)))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("wirecheck --pipe: %v\n%s", err, stderr.String())
	}
	if got, want := strings.TrimSpace(stderr.String()), "BOOT v=1 seq=0 boots=3 resume=7 reason=POWER_ON flags=0x03 cycles=0"; got != want {
		t.Errorf("C reads %q, want %q", got, want)
	}
	f, err := NewReader(&stdout).Next()
	if err != nil {
		t.Fatal(err)
	}
	if _, m, err := Unmarshal(f); err != nil || len(f) != HeaderLen+14+4 || m.(*Boot).Boots != 3 {
		t.Errorf("C re-encodes %x: %v", f, err)
	}
}
