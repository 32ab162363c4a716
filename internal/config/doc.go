// Package config is the one place that reads the environment. Each role
// (broker, gateway) has a typed struct filled once at start; Load reports
// every bad or missing variable at once, naming the variable and never its
// value, and everything below receives values rather than reading the
// environment itself.
package config
