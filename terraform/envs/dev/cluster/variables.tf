variable "state_bucket" {
  description = "Bucket of the Terraform states of this environment: this root's and the infrastructure root's, whose outputs it reads."
  type        = string
}
