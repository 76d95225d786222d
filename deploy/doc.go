// Package deploy holds wharf's deployment definitions (the Dockerfile, the
// Terraform under terraform/, the Grafana dashboard under grafana/, the
// local stack under local/) and the tests that check them offline: the
// image built without Docker, the HCL parsed, the task role compared with
// the AWS calls the Go code makes. It has no code of its own.
package deploy
