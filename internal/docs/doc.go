// Package docs holds the tests of the programs the README shows: each is
// compiled as a user would, in a module of its own outside the repository,
// and run as a real process. The examples are compiled the same way, tests
// included, so that they use eventfx's public packages only.
package docs
