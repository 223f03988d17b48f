package main

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/batteryless/harness/harness/suggest"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"gopkg.in/yaml.v3"
)

// settings is the viper instance of one run: flags over HARNESS_* variables
// over the config file over defaults.
type settings struct{ v *viper.Viper }

// envPrefix is the prefix of the environment variables that set flags.
const envPrefix = "HARNESS"

// load binds the running command's flags, the environment and the config
// file, in viper's order of precedence. A value of the wrong type, from any
// source, is refused naming where it came from, as a flag's would be; so is
// a config key that no command knows.
func (s *settings) load(cmd *cobra.Command) error {
	v := s.v
	v.SetEnvPrefix(envPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_", ".", "_"))
	v.AutomaticEnv()
	if err := v.BindPFlags(cmd.Flags()); err != nil {
		return err
	}
	if err := v.BindPFlags(cmd.InheritedFlags()); err != nil {
		return err
	}
	flags := map[string]*pflag.Flag{}
	visit := func(f *pflag.Flag) { flags[f.Name] = f }
	cmd.Flags().VisitAll(visit)
	cmd.InheritedFlags().VisitAll(visit)
	if err := checkEnv(flags); err != nil {
		return err
	}
	if path := v.GetString("config"); path != "" {
		if err := checkConfigFile(path, flags, allFlagNames(cmd.Root())); err != nil {
			return err
		}
		v.SetConfigFile(path)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return fmt.Errorf("config %s: %w", path, err)
		}
	}
	return nil
}

func (s *settings) str(key string) string   { return s.v.GetString(key) }
func (s *settings) boolean(key string) bool { return s.v.GetBool(key) }
func (s *settings) integer(key string) int  { return s.v.GetInt(key) }
func (s *settings) json() bool              { return s.v.GetBool("json") }

// pick is key's value when a flag, the environment or the file's top level
// set it, else the first of nested (keys of a --config section) the file
// sets, else key's default.
func (s *settings) pick(key string, nested ...string) string {
	if s.v.IsSet(key) {
		return s.str(key)
	}
	for _, k := range nested {
		if s.v.IsSet(k) {
			return s.str(k)
		}
	}
	return s.str(key)
}

// checkEnv refuses a HARNESS_* variable of one of the command's flags whose
// value the flag would refuse.
func checkEnv(flags map[string]*pflag.Flag) error {
	for name, f := range flags {
		env := envPrefix + "_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(name))
		val, ok := os.LookupEnv(env)
		if !ok || f.Changed {
			continue
		}
		if err := checkScalar(f, val); err != nil {
			return fmt.Errorf("environment %s=%q: %v", env, val, err)
		}
	}
	return nil
}

// configSection is what a --config section may hold: for each key, nil
// for a value, or the section below it (read as "section.key.key").
type configSection map[string]configSection

// keys lists a section's keys, sorted.
func (c configSection) keys() []string {
	out := make([]string, 0, len(c))
	for k := range c {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// configSections are the --config keys that hold a mapping of their own.
// A bench file reads like a labgrid environment: resources (what is on the
// bench), drivers (how to talk to it), the strategy (how the board gets its
// power); see harness replay --help and scripts/bench.yaml.
var configSections = configSection{
	"supply":    {"url": nil, "channel": nil, "log": nil},
	"resources": {"port": nil, "supply": nil, "channel": nil},
	"drivers": {
		"serial": {"baud": nil},
		"supply": {"timeout": nil, "log": nil},
	},
	"strategy": {"power": nil, "off-time": nil, "min-off": nil, "rate": nil, "curve-tolerance": nil},
}

// checkSection checks a section's mapping: known keys, values or the
// sections below them.
func checkSection(path, name string, n *yaml.Node, sec configSection) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("config %s:%d: key %q: want a mapping of %s, got a %s", path, n.Line, name, strings.Join(sec.keys(), ", "), kindName(n.Kind))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		sub, ok := sec[k.Value]
		if !ok {
			hint := ""
			if near := suggest.Nearest(k.Value, sec.keys()); near != "" {
				hint = fmt.Sprintf(" (did you mean %q?)", near)
			}
			return fmt.Errorf("config %s:%d: unknown key %q in %s%s", path, k.Line, k.Value, name, hint)
		}
		if sub != nil {
			if err := checkSection(path, name+"."+k.Value, v, sub); err != nil {
				return err
			}
			continue
		}
		if v.Kind != yaml.ScalarNode {
			return fmt.Errorf("config %s:%d: key %s.%s: want a value, got a %s", path, v.Line, name, k.Value, kindName(v.Kind))
		}
	}
	return nil
}

// checkConfigFile reads a --config file as YAML and checks every key: known
// to some command (else the nearest known key is suggested), and of the type
// of its flag when it is one of this command's.
func checkConfigFile(path string, flags map[string]*pflag.Flag, known []string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	if len(doc.Content) == 0 {
		return nil // an empty file
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return fmt.Errorf("config %s:%d: want a mapping of flag names to values", path, top.Line)
	}
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, val := top.Content[i], top.Content[i+1]
		f, ok := flags[k.Value]
		if sec, isSec := configSections[k.Value]; isSec && !(ok && val.Kind == yaml.ScalarNode) {
			// (a section's name that is also one of this command's flags
			// may hold the flag's value: supply: URL)
			if err := checkSection(path, k.Value, val, sec); err != nil {
				return err
			}
			continue
		}
		if !ok {
			if !contains(known, k.Value) {
				hint := ""
				if near := suggest.Nearest(k.Value, known); near != "" {
					hint = fmt.Sprintf(" (did you mean %q?)", near)
				}
				return fmt.Errorf("config %s:%d: unknown key %q%s", path, k.Line, k.Value, hint)
			}
			continue // another command's flag: a config may serve several
		}
		if err := checkNode(f, val); err != nil {
			return fmt.Errorf("config %s:%d: key %q: %v", path, val.Line, k.Value, err)
		}
	}
	return nil
}

// checkNode checks a YAML value against a flag's type.
func checkNode(f *pflag.Flag, n *yaml.Node) error {
	typ := f.Value.Type()
	if strings.HasSuffix(typ, "Slice") || strings.HasSuffix(typ, "Array") {
		switch n.Kind {
		case yaml.ScalarNode:
			return nil // "a,b" as the flag takes it
		case yaml.SequenceNode:
			for _, item := range n.Content {
				if item.Kind != yaml.ScalarNode {
					return fmt.Errorf("want a list of %s values, got a nested %s", strings.TrimSuffix(typ, "Slice"), kindName(item.Kind))
				}
			}
			return nil
		}
		return fmt.Errorf("want a list of %s values, got a %s", strings.TrimSuffix(typ, "Slice"), kindName(n.Kind))
	}
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want %s, got a %s", typeName(typ), kindName(n.Kind))
	}
	if n.Tag == "!!null" {
		return fmt.Errorf("want %s, got nothing", typeName(typ))
	}
	return checkScalar(f, n.Value)
}

// checkScalar checks one textual value against a flag's type.
func checkScalar(f *pflag.Flag, val string) error {
	typ := f.Value.Type()
	var err error
	switch typ {
	case "int", "int64", "int32":
		_, err = strconv.ParseInt(strings.TrimSpace(val), 0, 64)
	case "uint", "uint64", "uint32":
		_, err = strconv.ParseUint(strings.TrimSpace(val), 0, 64)
	case "float64", "float32":
		_, err = strconv.ParseFloat(strings.TrimSpace(val), 64)
	case "bool":
		_, err = strconv.ParseBool(strings.TrimSpace(val))
	case "duration":
		_, err = time.ParseDuration(strings.TrimSpace(val))
	}
	if err != nil {
		return fmt.Errorf("want %s, got %q", typeName(typ), val)
	}
	return nil
}

func typeName(t string) string {
	switch t {
	case "int", "int64", "int32", "uint", "uint64", "uint32":
		return "a whole number"
	case "float64", "float32":
		return "a number"
	case "bool":
		return "true or false"
	case "duration":
		return "a duration (e.g. 30s, 10m)"
	}
	return "a " + t
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.SequenceNode:
		return "list"
	case yaml.MappingNode:
		return "mapping"
	case yaml.AliasNode:
		return "alias"
	}
	return "value"
}

// allFlagNames lists every flag of every command under root.
func allFlagNames(root *cobra.Command) []string {
	seen := map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		add := func(f *pflag.Flag) { seen[f.Name] = true }
		c.Flags().VisitAll(add)
		c.PersistentFlags().VisitAll(add)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
