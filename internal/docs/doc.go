// Package docs holds the tests of the programs the README shows: each is
// compiled as a user would, in a module of its own outside the repository,
// and run as a real process.
package docs
