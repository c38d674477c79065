import CHiredis
import CLibPQ
