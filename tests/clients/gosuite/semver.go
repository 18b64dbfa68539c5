// Package semver is a stand-in for github.com/Masterminds/semver/v3, which Debian does
// not ship: pgx's stdlib tests use it only to skip a test on old servers, with a
// constraint "OP VERSION". It compares up to three numeric parts.
package semver

import (
	"fmt"
	"strconv"
	"strings"
)

type Version struct{ parts [3]int }

func NewVersion(s string) (*Version, error) {
	var v Version
	for i, p := range strings.SplitN(strings.TrimSpace(s), ".", 3) {
		n, err := strconv.Atoi(p)
		if err != nil {
			return nil, fmt.Errorf("semver stand-in: bad version %q", s)
		}
		v.parts[i] = n
	}
	return &v, nil
}

func (v *Version) compare(o *Version) int {
	for i := range v.parts {
		if v.parts[i] != o.parts[i] {
			if v.parts[i] < o.parts[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

type Constraints struct {
	op string
	v  *Version
}

func NewConstraint(s string) (*Constraints, error) {
	s = strings.TrimSpace(s)
	for _, op := range []string{"<=", ">=", "!=", "<", ">", "="} {
		if strings.HasPrefix(s, op) {
			v, err := NewVersion(s[len(op):])
			if err != nil {
				return nil, err
			}
			return &Constraints{op, v}, nil
		}
	}
	return nil, fmt.Errorf("semver stand-in: unsupported constraint %q", s)
}

func (c *Constraints) Check(v *Version) bool {
	r := v.compare(c.v)
	switch c.op {
	case "<":
		return r < 0
	case "<=":
		return r <= 0
	case ">":
		return r > 0
	case ">=":
		return r >= 0
	case "!=":
		return r != 0
	}
	return r == 0
}
