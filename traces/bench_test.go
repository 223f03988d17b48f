package traces

import (
	"bytes"
	"io"
	"strconv"
	"testing"
)

// makeData renders rows in memory once, for the read benchmarks.
func makeData(header string, rows int64, row func([]byte, int64) []byte) []byte {
	var b bytes.Buffer
	b.WriteString(header)
	var line []byte
	for i := range rows {
		line = row(line[:0], i)
		b.Write(line)
	}
	return b.Bytes()
}

func benchRead(b *testing.B, data []byte, rows int64, opt Options) {
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := NewReader(bytes.NewReader(data), "bench", opt)
		if err != nil {
			b.Fatal(err)
		}
		n := int64(0)
		for {
			_, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != rows {
			b.Fatalf("%d rows", n)
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

const benchRows = 200_000

func BenchmarkReadREACT(b *testing.B) {
	benchRead(b, makeData("sec RSSI,mW\n", benchRows, reactRows), benchRows, Options{})
}

func BenchmarkReadMementos(b *testing.B) {
	data := makeData("", benchRows, func(buf []byte, i int64) []byte {
		buf = strconv.AppendInt(buf, 103717744+i, 10)
		buf = append(buf, '\t')
		return append(strconv.AppendFloat(buf, float64(i%32768)*0.000161, 'g', 6, 64), '\n')
	})
	benchRead(b, data, benchRows, Options{})
}

func BenchmarkReadCSV(b *testing.B) {
	var buf bytes.Buffer
	WriteCSV(&buf, must(Synth("rf:duration=4000s,rate=50Hz")))
	benchRead(b, buf.Bytes(), benchRows, Options{})
}

func BenchmarkSummarize(b *testing.B) {
	s := all(&testing.T{}, must(Synth("rf:duration=4000s,rate=50Hz")))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Summarize(FromSamples(Meta{Period: 0.02}, s), 1e-3); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(s))*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

func BenchmarkResample(b *testing.B) {
	s := all(&testing.T{}, must(Synth("rf:duration=4000s,rate=50Hz")))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Summarize(Resample(FromSamples(Meta{Period: 0.02}, s), 0.03), 1e-3); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(s))*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

func BenchmarkWriteCSV(b *testing.B) {
	s := all(&testing.T{}, must(Synth("rf:duration=4000s,rate=50Hz")))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := WriteCSV(io.Discard, FromSamples(Meta{Period: 0.02}, s)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(s))*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

func BenchmarkSynthRF(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		r := must(Synth("rf:duration=4000s,rate=50Hz"))
		for {
			if _, err := r.Next(); err != nil {
				break
			}
		}
	}
	b.ReportMetric(float64(benchRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
