package wire

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// The text form of a frame, one line: the type's name, then key=value
// fields, header first:
//
//	DEPLOY_CHUNK v=1 seq=3 offset=484 data=49485044
//	IDENTITY v=1 seq=1 fw=0x00010000 nvm=262144 image=131072 boots=7 rx_errors=0 window=8 flags=0x01 name="msp430fr5994"
//
// Numbers are decimal or 0x-hexadecimal; enumerations are names (a number is
// accepted for a value without one); byte fields are hexadecimal digits or a
// "quoted string" of printable ASCII without '"' and '\'. The shared test
// vectors (firmware/proto/vectors.txt) and the examples of PROTOCOL.md use
// this form; firmware/host/wirecheck.c reads the same syntax.

type fieldKind uint8

const (
	fDec    fieldKind = iota // number, written in decimal
	fHex                     // number, written in hexadecimal
	fStatus                  // Status name
	fType                    // Type name
	fReason                  // boot reason name
	fCommit                  // commit kind name
	fData                    // bytes, written in hex
	fText                    // bytes, written quoted when printable
)

type field struct {
	name string
	kind fieldKind
	ptr  any // *uint8, *uint16, *uint32, *Status, *Type, *[]byte, *string
}

// fields lists a message's fields in their wire order.
func fields(m Message) []field {
	switch m := m.(type) {
	case *DeployChunk:
		return []field{{"offset", fDec, &m.Offset}, {"data", fData, &m.Data}}
	case *DeployCommit:
		return []field{{"length", fDec, &m.Length}, {"crc", fHex, &m.CRC}}
	case *SetInput:
		return []field{{"offset", fDec, &m.Offset}, {"data", fData, &m.Data}}
	case *Start:
		return []field{{"inference", fDec, &m.Inference}}
	case *ReadOutput:
		return []field{{"offset", fDec, &m.Offset}, {"length", fDec, &m.Length}}
	case *ReadNVM:
		return []field{{"offset", fDec, &m.Offset}, {"length", fDec, &m.Length}}
	case *Ack:
		return []field{{"status", fStatus, &m.Status}, {"cmd", fType, &m.Cmd}, {"detail", fHex, &m.Detail}}
	case *Identity:
		return []field{{"fw", fHex, &m.Firmware}, {"nvm", fDec, &m.NVMBytes}, {"image", fDec, &m.ImageBytes},
			{"boots", fDec, &m.Boots}, {"rx_errors", fDec, &m.RxErrors}, {"window", fDec, &m.Window},
			{"flags", fHex, &m.Flags}, {"name", fText, &m.Name}}
	case *Data:
		return []field{{"offset", fDec, &m.Offset}, {"data", fData, &m.Data}}
	case *Boot:
		return []field{{"boots", fDec, &m.Boots}, {"resume", fDec, &m.Resume}, {"reason", fReason, &m.Reason}, {"flags", fHex, &m.Flags}, {"cycles", fDec, &m.Cycles}}
	case *TaskDone:
		return []field{{"task", fDec, &m.Task}, {"cycles", fDec, &m.Cycles}}
	case *Commit:
		return []field{{"progress", fDec, &m.Progress}, {"kind", fCommit, &m.Kind}}
	case *Result:
		return []field{{"inference", fDec, &m.Inference}, {"length", fDec, &m.Length}, {"crc", fHex, &m.CRC}}
	case *Log:
		return []field{{"level", fDec, &m.Level}, {"text", fText, &m.Text}}
	case *Unknown:
		return []field{{"payload", fData, &m.Payload}}
	}
	return nil
}

var reasonNames = map[uint8]string{BootPowerOn: "POWER_ON", BootReset: "RESET", BootWatchdog: "WATCHDOG", BootSoftware: "SOFTWARE", BootUnknown: "UNKNOWN"}
var commitNames = map[uint8]string{CommitTask: "TASK", CommitEarly: "EARLY"}

// Format writes a frame's header and message in the text form.
func Format(h Header, m Message) string {
	var sb strings.Builder
	sb.WriteString(h.Type.String())
	fmt.Fprintf(&sb, " v=%d seq=%d", h.Version, h.Seq)
	for _, f := range fields(m) {
		sb.WriteString(" " + f.name + "=")
		sb.WriteString(formatValue(f))
	}
	return sb.String()
}

func number(p any) uint64 {
	switch p := p.(type) {
	case *uint8:
		return uint64(*p)
	case *uint16:
		return uint64(*p)
	case *uint32:
		return uint64(*p)
	case *Status:
		return uint64(*p)
	case *Type:
		return uint64(*p)
	}
	return 0
}

func width(p any) int {
	switch p.(type) {
	case *uint16:
		return 16
	case *uint32:
		return 32
	}
	return 8
}

func formatValue(f field) string {
	switch f.kind {
	case fDec:
		return strconv.FormatUint(number(f.ptr), 10)
	case fHex:
		return fmt.Sprintf("0x%0*x", width(f.ptr)/4, number(f.ptr))
	case fStatus:
		return Status(number(f.ptr)).String()
	case fType:
		t := Type(number(f.ptr))
		if t.Known() {
			return t.String()
		}
		return fmt.Sprintf("0x%02x", uint8(t))
	case fReason, fCommit:
		names := reasonNames
		if f.kind == fCommit {
			names = commitNames
		}
		v := uint8(number(f.ptr))
		if n, ok := names[v]; ok {
			return n
		}
		return strconv.Itoa(int(v))
	}
	var b []byte
	switch p := f.ptr.(type) {
	case *[]byte:
		b = *p
	case *string:
		b = []byte(*p)
	}
	if f.kind == fText && printable(b) {
		return `"` + string(b) + `"`
	}
	if len(b) == 0 {
		return `""`
	}
	return hex.EncodeToString(b)
}

func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7E || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// SplitFields splits the text form into its tokens: the first is the type
// name, the others key=value (a quoted value may hold spaces).
func SplitFields(s string) ([]string, error) {
	var out []string
	for i := 0; i < len(s); {
		if s[i] == ' ' || s[i] == '\t' {
			i++
			continue
		}
		j := i
		for j < len(s) && s[j] != ' ' && s[j] != '\t' {
			if s[j] == '"' {
				k := strings.IndexByte(s[j+1:], '"')
				if k < 0 {
					return nil, fmt.Errorf("wire: unterminated quote in %q", s[i:])
				}
				j += k + 2
				continue
			}
			j++
		}
		out = append(out, s[i:j])
		i = j
	}
	return out, nil
}

// ParseText reads the text form of a frame. Every field of the message and
// v and seq must be given, once each.
func ParseText(s string) (Header, Message, error) {
	toks, err := SplitFields(s)
	if err != nil {
		return Header{}, nil, err
	}
	if len(toks) == 0 {
		return Header{}, nil, fmt.Errorf("wire: empty text")
	}
	t, ok := TypeByName(toks[0])
	if !ok {
		return Header{}, nil, fmt.Errorf("wire: unknown message type %q", toks[0])
	}
	h := Header{Type: t}
	m := newMessage(t)
	vals := map[string]string{}
	for _, tok := range toks[1:] {
		k, v, ok := strings.Cut(tok, "=")
		if !ok {
			return Header{}, nil, fmt.Errorf("wire: %v: %q is not key=value", t, tok)
		}
		if _, dup := vals[k]; dup {
			return Header{}, nil, fmt.Errorf("wire: %v: field %s given twice", t, k)
		}
		vals[k] = v
	}
	take := func(k string) (string, error) {
		v, ok := vals[k]
		if !ok {
			return "", fmt.Errorf("wire: %v: field %s missing", t, k)
		}
		delete(vals, k)
		return v, nil
	}
	for _, f := range []field{{"v", fDec, &h.Version}, {"seq", fDec, &h.Seq}} {
		v, err := take(f.name)
		if err == nil {
			err = parseValue(f, v)
		}
		if err != nil {
			return Header{}, nil, err
		}
	}
	for _, f := range fields(m) {
		v, err := take(f.name)
		if err == nil {
			err = parseValue(f, v)
		}
		if err != nil {
			return Header{}, nil, fmt.Errorf("wire: %v: %w", t, err)
		}
	}
	for k := range vals {
		return Header{}, nil, fmt.Errorf("wire: %v has no field %s", t, k)
	}
	return h, m, nil
}

func parseValue(f field, v string) error {
	switch f.kind {
	case fData, fText:
		var b []byte
		if strings.HasPrefix(v, `"`) {
			if len(v) < 2 || !strings.HasSuffix(v, `"`) || !printable([]byte(v[1:len(v)-1])) {
				return fmt.Errorf("%s: bad quoted string %s", f.name, v)
			}
			b = []byte(v[1 : len(v)-1])
		} else {
			var err error
			if b, err = hex.DecodeString(v); err != nil {
				return fmt.Errorf("%s: %q is neither hex nor a quoted string", f.name, v)
			}
		}
		switch p := f.ptr.(type) {
		case *[]byte:
			*p = b
		case *string:
			*p = string(b)
		}
		return nil
	}
	var n uint64
	var err error
	switch {
	case f.kind == fStatus && lookup(statusNames[:], v) >= 0:
		n = uint64(lookup(statusNames[:], v))
	case f.kind == fType && isTypeName(v):
		t, _ := TypeByName(v)
		n = uint64(t)
	case f.kind == fReason && nameValue(reasonNames, v) >= 0:
		n = uint64(nameValue(reasonNames, v))
	case f.kind == fCommit && nameValue(commitNames, v) >= 0:
		n = uint64(nameValue(commitNames, v))
	default:
		n, err = strconv.ParseUint(v, 0, width(f.ptr))
		if err != nil {
			return fmt.Errorf("%s: %q is not a %d-bit number", f.name, v, width(f.ptr))
		}
	}
	switch p := f.ptr.(type) {
	case *uint8:
		*p = uint8(n)
	case *uint16:
		*p = uint16(n)
	case *uint32:
		*p = uint32(n)
	case *Status:
		*p = Status(n)
	case *Type:
		*p = Type(n)
	}
	return nil
}

func lookup(names []string, v string) int {
	for i, n := range names {
		if n == v {
			return i
		}
	}
	return -1
}

func isTypeName(v string) bool { _, ok := TypeByName(v); return ok }

func nameValue(names map[uint8]string, v string) int {
	for k, n := range names {
		if n == v {
			return int(k)
		}
	}
	return -1
}
