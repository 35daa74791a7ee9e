"""Model specs: schema, graph and shape checks, parameter and FLOP counts, the zoo, codegen."""
