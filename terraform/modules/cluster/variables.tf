variable "inputs" {
  description = "The infrastructure root's output cluster_inputs (modules/platform): cluster, names, service accounts, KFP's database and pipeline root, images, settings, secret ids."
  type        = any
}
