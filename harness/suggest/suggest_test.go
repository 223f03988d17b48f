package suggest

import "testing"

func TestNearest(t *testing.T) {
	known := []string{"inferences", "loop", "scheduler", "schedulers", "trace"}
	for _, c := range []struct{ in, want string }{
		{"inferenecs", "inferences"},
		{"infer", "inferences"}, // an abbreviation
		{"lop", "loop"},
		{"schedular", "scheduler"},
		{"zzzzzz", ""},
		{"x", ""},
	} {
		if got := Nearest(c.in, known); got != c.want {
			t.Errorf("Nearest(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if d := Distance("kitten", "sitting"); d != 3 {
		t.Errorf("Distance = %d, want 3", d)
	}
}

func ExampleNearest() {
	println(Nearest("inferenecs", []string{"inferences", "loop"}))
}
