from optimizer_dynamics.figures.render import main

main()
