package traces

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
)

// WriteCSV writes r as a canonical CSV (see FORMAT.md) and returns the number
// of samples written. The '#' comments carry r's Meta (source name, format,
// kind, period, load, earlier comments and warnings), then comes the header
// time_s,power_w and one row per sample, with numbers printed in the shortest
// form that reads back to the same float64. It streams: memory stays constant.
// Warnings that r raises while being read are appended as '#' lines after the
// rows; if reading fails, a final "# error:" line says why before the error is
// returned.
func WriteCSV(w io.Writer, r Reader) (int, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	m := r.Meta()
	writeComment := func(key, val string) {
		bw.WriteString("# " + key + ": " + oneLine(val) + "\n")
	}
	writeComment("source", m.Name)
	writeComment("format", m.Format)
	writeComment("kind", m.Kind.String())
	if m.Period > 0 {
		writeComment("period_s", fmtNum(m.Period))
	}
	if m.LoadOhms > 0 {
		writeComment("load_ohms", fmtNum(m.LoadOhms))
	}
	for _, c := range m.Comments {
		writeComment("comment", c)
	}
	for _, wn := range m.Warnings {
		writeComment("warning", wn)
	}
	bw.WriteString("time_s,power_w\n")
	n := 0
	buf := make([]byte, 0, 64)
	for {
		s, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			writeComment("error", err.Error())
			bw.Flush()
			return n, err
		}
		buf = strconv.AppendFloat(buf[:0], s.T, 'g', -1, 64)
		buf = append(buf, ',')
		buf = strconv.AppendFloat(buf, s.P, 'g', -1, 64)
		buf = append(buf, '\n')
		if _, err := bw.Write(buf); err != nil {
			return n, fmt.Errorf("%s: writing CSV: %s", oneLine(m.Name), oneLine(err.Error()))
		}
		n++
	}
	end := r.Meta()
	for _, wn := range end.Warnings[min(len(m.Warnings), len(end.Warnings)):] {
		writeComment("warning", wn)
	}
	if err := bw.Flush(); err != nil {
		return n, fmt.Errorf("%s: writing CSV: %s", oneLine(m.Name), oneLine(err.Error()))
	}
	return n, nil
}
