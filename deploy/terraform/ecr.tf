# An optional ECR repository for the image (create_ecr_repository). Tags
# are immutable: deploy by digest, as var.image says; docs/operations.md
# has the push.

variable "create_ecr_repository" {
  description = "Create an ECR repository named var.name for the wharf image. Off when the image lives in a registry you already have."
  type        = bool
  default     = false
}

resource "aws_ecr_repository" "wharf" {
  count                = var.create_ecr_repository ? 1 : 0
  name                 = var.name
  image_tag_mutability = "IMMUTABLE"
  image_scanning_configuration {
    scan_on_push = true
  }
  encryption_configuration {
    encryption_type = "KMS"
  }
  tags = local.tags
}

# Untagged images (a tag pushed twice is refused, so these are left by
# failed pushes) go after 14 days; tagged ones stay, since a rollback needs
# the previous digests.
resource "aws_ecr_lifecycle_policy" "wharf" {
  count      = var.create_ecr_repository ? 1 : 0
  repository = aws_ecr_repository.wharf[0].name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Expire untagged images after 14 days"
      selection = {
        tagStatus   = "untagged"
        countType   = "sinceImagePushed"
        countUnit   = "days"
        countNumber = 14
      }
      action = { type = "expire" }
    }]
  })
}
