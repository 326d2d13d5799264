from optimizer_dynamics.claims import main

main()
