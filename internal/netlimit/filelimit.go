package netlimit

import "fmt"

// Ceiling is the most connections DefaultMax allows however high the file
// limit: each open connection costs memory (tens of KB with its buffers),
// so a very high file limit should not turn into a memory exhaustion.
const Ceiling = 10000

// DefaultMax derives a connection cap from the process's open-file limit:
// a quarter of the limit (at least 64 descriptors) stays free for database
// connections, outbound calls, listeners and log files, and the result is
// at most Ceiling.
func DefaultMax(fileLimit uint64) int {
	reserve := max(fileLimit/4, 64)
	var m uint64
	switch {
	case fileLimit > reserve+16:
		m = fileLimit - reserve
	default:
		// A tiny limit: split it rather than leave nothing to serve with.
		m = max(fileLimit/2, 1)
	}
	return int(min(m, Ceiling))
}

// Resolve picks the cap: override when set (it must be below the file
// limit, or the cap would never be reached before accept fails), otherwise
// DefaultMax. fileLimit 0 means unknown, and then only override is checked
// for sign.
func Resolve(override int, fileLimit uint64) (int, error) {
	if override < 0 {
		return 0, fmt.Errorf("MAX_CONNECTIONS must not be negative")
	}
	if override == 0 {
		if fileLimit == 0 {
			return Ceiling, nil
		}
		return DefaultMax(fileLimit), nil
	}
	if fileLimit != 0 && uint64(override) >= fileLimit {
		return 0, fmt.Errorf("MAX_CONNECTIONS=%d is not below the open-file limit (%d): lower it, or raise the limit (ulimit -n, LimitNOFILE=, --ulimit nofile=)", override, fileLimit)
	}
	return override, nil
}
