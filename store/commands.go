package store

import (
	"encoding/json"
	"fmt"
	"slices"
)

// CommandLines is the list of command lines kept in run.json under "command".
type CommandLines [][]string

// UnmarshalJSON reads a list of command lines, or one command line (a list of strings,
// as run.json held before every command was kept), or null.
func (c *CommandLines) UnmarshalJSON(b []byte) error {
	var lines [][]string
	if err := json.Unmarshal(b, &lines); err == nil {
		*c = lines
		return nil
	}
	var one []string
	if err := json.Unmarshal(b, &one); err != nil {
		return fmt.Errorf("field \"command\": a list of command lines (lists of strings) expected")
	}
	*c = nil
	if one != nil {
		*c = CommandLines{one}
	}
	return nil
}

// AddCommand records another command line that writes to the run (a resume or an
// append): it becomes Command and is appended to Commands.
func (m *Meta) AddCommand(line []string) {
	m.Command = slices.Clone(line)
	m.Commands = append(m.Commands, m.Command)
}
