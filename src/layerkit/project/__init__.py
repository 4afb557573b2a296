"""The project as layerkit reads it: layers, functions, template.yaml, requirements, stages."""
