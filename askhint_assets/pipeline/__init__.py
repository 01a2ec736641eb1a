"""The pipeline layer: the core and the store together (units → requests → rows). :mod:`.runner` answers
requests from the response cache and sends the misses; ``askhint_assets.inference`` builds the requests and
the prediction rows."""
