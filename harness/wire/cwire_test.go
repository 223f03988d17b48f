package wire

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batteryless/harness/harness/testenv"
)

// The firmware's side of the protocol (firmware/runtime/wire.c) is checked
// against the same vectors and against this package's frames, with the
// host program firmware/host/wirecheck.c.

const repoRoot = "../.."

// buildWirecheck compiles wirecheck with the system C compiler.
func buildWirecheck(t *testing.T) string {
	t.Helper()
	testenv.NeedTool(t, "cc", "gcc")
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "wirecheck")
	cmd := exec.Command(cc, "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-Ifirmware/runtime",
		"firmware/runtime/wire.c", "firmware/host/wirecheck.c", "-o", bin)
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	return bin
}

// TestWirecheckVectors: the C codec decodes every shared vector to its
// fields and encodes the fields to its bytes.
func TestWirecheckVectors(t *testing.T) {
	bin := buildWirecheck(t)
	out, err := exec.Command(bin, filepath.Join(repoRoot, "firmware/proto/vectors.txt")).CombinedOutput()
	if err != nil {
		t.Fatalf("wirecheck: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), " 0 failures") {
		t.Fatalf("wirecheck: %s", out)
	}
	t.Logf("%s", bytes.TrimSpace(out))
}

// TestWirecheckPipe: frames encoded here, with noise and a cut frame
// between them, go through the C receiver and encoder and come back the
// same; the C side's text form of each is this package's.
func TestWirecheckPipe(t *testing.T) {
	bin := buildWirecheck(t)
	var in, want bytes.Buffer
	var wantText []string
	add := func(seq uint16, m Message) {
		w, err := Encode(seq, m)
		if err != nil {
			t.Fatal(err)
		}
		in.Write(w)
		want.Write(w)
		f, _ := Marshal(seq, m)
		h, mm, _ := Unmarshal(f)
		wantText = append(wantText, Format(h, mm))
	}
	ms := samples()
	for i, ty := range Types() {
		add(uint16(i*4099), ms[ty])
	}
	in.Write([]byte{0x31, 0x32, 0x33, 0}) // noise, then a delimiter
	wantText = append(wantText, "error=cobs")
	cut, _ := Encode(77, &DeployChunk{Offset: 1, Data: bytes.Repeat([]byte{0}, 100)})
	in.Write(cut[:50])
	in.WriteByte(0) // a frame cut by a brown-out, then the board's leading delimiter
	wantText = append(wantText, "error=crc")
	add(65535, &Log{Level: 1, Text: "after the noise"})
	in.Write(bytes.Repeat([]byte{0xEE}, 300))
	in.WriteByte(0)
	wantText = append(wantText, "error=long")
	add(0, &Result{Inference: 3, Length: 4, CRC: 5})

	cmd := exec.Command(bin, "--pipe")
	cmd.Stdin = &in
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("wirecheck --pipe: %v\n%s", err, stderr.String())
	}
	if !bytes.Equal(stdout.Bytes(), want.Bytes()) {
		t.Errorf("the C side re-encodes\n%x\nnot\n%x", stdout.Bytes(), want.Bytes())
	}
	got := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if strings.Join(got, "\n") != strings.Join(wantText, "\n") {
		t.Errorf("the C side reads\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantText, "\n"))
	}
	// And this package reads what the C side wrote.
	r := NewReader(&stdout)
	for i := 0; ; i++ {
		f, err := r.Next()
		if err != nil {
			break
		}
		if _, _, err := Unmarshal(f); err != nil {
			t.Errorf("frame %d from the C side: %v", i, err)
		}
	}
}

// TestFirmwareCompiles: wire.c builds freestanding for the MSP430 (16-bit
// int) and the Cortex-M4, where those compilers are installed.
func TestFirmwareCompiles(t *testing.T) {
	out := t.TempDir()
	try := func(name string, args ...string) {
		t.Run(name, func(t *testing.T) {
			testenv.NeedTool(t, args[0], map[string]string{"clang": "clang", "arm-none-eabi-gcc": "gcc-arm-none-eabi libnewlib-arm-none-eabi"}[args[0]])
			obj := filepath.Join(out, name+".o")
			cmd := exec.Command(args[0], append(args[1:], "-c", "firmware/runtime/wire.c", "-o", obj)...)
			cmd.Dir = repoRoot
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, b)
			}
			if st, err := os.Stat(obj); err != nil || st.Size() == 0 {
				t.Fatalf("no object file: %v", err)
			}
		})
	}
	try("msp430", "clang", "--target=msp430", "-ffreestanding", "-std=c99", "-Wall", "-Wextra", "-Werror", "-O2")
	try("cortex-m4", "arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-ffreestanding", "-std=c99", "-Wall", "-Wextra", "-Werror", "-O2")
}
